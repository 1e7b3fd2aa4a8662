"""A job's progress as the orchestrator counts it: the typed progress behind `watch_progress()`.

Pure and transport-free: the CLI's progress bars and the tests use it on plain `JobEvent` messages.
The counters per stage are the orchestrator's own (every event carries them in `counts`), never
recounted here; items are kept as their latest event shows them, and in-stage progress (denoising
steps) as its latest value. Events already applied (a reconnect that resumes) change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storytelling.api.vocabulary import STAGES, TERMINAL_JOB_STATES
from storytelling.v1 import pipeline_pb2


@dataclass
class StageStatus:
    stage: int
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    waiting: int = 0
    # While items wait for the stage's service: which service, why and since when.
    wait: pipeline_pb2.ServiceWait | None = None
    # Latest in-stage progress (for example denoising steps): item index, step, total steps.
    step: tuple[int, int, int] | None = None


@dataclass
class JobProgress:
    """A job's progress per stage, from its events (`update`)."""

    job_id: str
    total: int
    stages: dict[int, StageStatus]
    state: int = pipeline_pb2.JOB_STATE_QUEUED
    last_sequence: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    # The latest state of each item an event showed.
    items: dict[int, pipeline_pb2.Item] = field(default_factory=dict)
    # The final job (without items), from the `finished` event.
    job: pipeline_pb2.Job | None = None

    @classmethod
    def for_job(cls, job: pipeline_pb2.Job) -> JobProgress:
        """Starts from a job as CreateJob or GetJob returns it. Only the job's stages get a counter: those
        the orchestrator lists in `job.stages`, else those the spec does not skip."""
        listed = {c.stage for c in job.stages}
        skipped = {
            pipeline_pb2.STAGE_RENDER: job.spec.skip_render,
            pipeline_pb2.STAGE_EVALUATE: job.spec.skip_evaluation,
        }
        runs = [s for s in STAGES if s in listed] if listed else [s for s in STAGES if not skipped.get(s)]
        stages: dict[int, StageStatus] = {s: StageStatus(s, job.spec.items) for s in runs}
        progress = cls(job.id, job.spec.items, stages, state=job.state)
        progress._count(
            pipeline_pb2.JobCounts(
                stages=job.stages, items_succeeded=job.items_succeeded, items_failed=job.items_failed
            )
        )
        for item in job.items:
            progress.items[item.index] = item
        return progress

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_JOB_STATES

    def update(self, event: pipeline_pb2.JobEvent) -> None:
        kind = event.WhichOneof("event")
        if kind == "progress":  # not stored, sequence 0: always the latest value
            if (status := self.stages.get(event.progress.stage)) is not None and status.running:
                status.step = (event.progress.item_index, event.progress.step, event.progress.total)
            return
        if kind in ("item", "job_state") and event.sequence and event.sequence <= self.last_sequence:
            return  # already applied: a reconnect resumes after the last sequence seen
        self.last_sequence = max(self.last_sequence, event.sequence)
        if event.HasField("counts"):
            self._count(event.counts)
        if kind == "job_state":
            self.state = event.job_state
        elif kind == "item":
            self.items[event.item.index] = event.item
        elif kind == "snapshot":
            self.state = event.snapshot.state
        elif kind == "finished":
            self.job = event.finished
            self.state = event.finished.state

    def _count(self, counts: pipeline_pb2.JobCounts) -> None:
        self.items_succeeded, self.items_failed = counts.items_succeeded, counts.items_failed
        for counted in counts.stages:
            status = self.stages.get(counted.stage)
            if status is None:
                continue
            status.done, status.failed = counted.done, counted.failed
            status.running, status.waiting = counted.running, counted.waiting
            status.wait = counted.wait if counted.HasField("wait") else None
            if not status.running:
                status.step = None
