"""Folds a job's event stream into per-stage counts: the typed progress behind `watch_progress()`.

Pure and transport-free: the CLI's progress bars and the tests use it on plain `JobEvent` messages.
An item's stage counts as done by the rule the orchestrator counts with (`storytelling.api.vocabulary.
stage_outcome`), so replays and duplicate events after a reconnect leave the counts unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from storytelling.api.vocabulary import STAGES, TERMINAL_JOB_STATES, stage_outcome
from storytelling.v1 import pipeline_pb2


@dataclass
class StageStatus:
    stage: int
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    # Latest in-stage progress (for example denoising steps): item index, step, total steps.
    step: tuple[int, int, int] | None = None


@dataclass
class JobProgress:
    """A job's progress per stage, folded from its events (`update`)."""

    job_id: str
    total: int
    stages: dict[int, StageStatus]
    state: int = pipeline_pb2.JOB_STATE_QUEUED
    last_sequence: int = 0
    items: dict[int, pipeline_pb2.Item] = field(default_factory=dict)
    # The final job, from the `finished` event.
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
        for item in job.items:
            progress.items[item.index] = item
        progress._recount()
        return progress

    @property
    def ended(self) -> bool:
        return self.state in TERMINAL_JOB_STATES

    @property
    def items_succeeded(self) -> int:
        return sum(i.state == pipeline_pb2.ITEM_STATE_SUCCEEDED for i in self.items.values())

    @property
    def items_failed(self) -> int:
        return sum(i.state == pipeline_pb2.ITEM_STATE_FAILED for i in self.items.values())

    def update(self, event: pipeline_pb2.JobEvent) -> None:
        if event.sequence and event.sequence <= self.last_sequence:
            return  # already applied: a reconnect replays from the last sequence seen
        self.last_sequence = max(self.last_sequence, event.sequence)
        kind = event.WhichOneof("event")
        if kind == "job_state":
            self.state = event.job_state
        elif kind == "item":
            self.items[event.item.index] = event.item
            self._recount()
        elif kind == "progress" and event.progress.stage in self.stages:
            p = event.progress
            self.stages[p.stage].step = (p.item_index, p.step, p.total)
        elif kind == "finished":
            self.job = event.finished
            self.state = event.finished.state
            for item in event.finished.items:
                self.items[item.index] = item
            self._recount()

    def _recount(self) -> None:
        for status in self.stages.values():
            status.done = status.failed = status.running = 0
        for item in self.items.values():
            for stage, status in self.stages.items():
                outcome = stage_outcome(item, stage)
                if outcome == "done":
                    status.done += 1
                elif outcome == "failed":
                    status.failed += 1
                elif outcome == "running":
                    status.running += 1
        for status in self.stages.values():
            if status.running == 0:
                status.step = None
