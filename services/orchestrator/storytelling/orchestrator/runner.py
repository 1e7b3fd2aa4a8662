"""Runs one job to its end: items through story, render and evaluation, then the set summary.

Items stream through: the runner holds only the items in flight (the pipeline's queues bound them),
takes the next ones as the first stage has room, and lets an item go once it has ended; the job's
counters move by what each change adds and removes. The runner resumes as naturally as it starts: a
stage whose artifact is on disk is read back, not run, and items that already ended are not fed again.
Every change goes to the journal as it happens (stored, then published); progress goes only to watchers.
All file I/O runs on worker threads.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from google.protobuf import timestamp_pb2

from storytelling.api import vocabulary
from storytelling.api.layout import (
    EVALUATION_FILE,
    ITEMS_DIR,
    STORY_FILE,
    ArtifactWrite,
    ItemRecord,
    JobFiles,
    image_metadata,
    write_artifacts,
)
from storytelling.api.pools import parse_pool
from storytelling.runtime.errors import ServiceError
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2

from .events import Progress
from .gate import Outage, ServiceGate
from .journal import Journal, now, without_items
from .metrics import JobMetrics
from .pipeline import PipelineStage, run_pipeline
from .policy import EVALUATE, RENDER, STORY, PipelinePolicy
from .retry import retry, within
from .seeds import derive_seed
from .stages import Stages
from .store import Store

logger = logging.getLogger(__name__)

R = TypeVar("R")
# Writes the gallery of a job directory, given the job as it ends and its items (a fresh iteration per
# call); returns the page's path. Runs on a worker thread.
Gallery = Callable[[Path, pipeline_pb2.Job, Callable[[], Iterable[ItemRecord]] | None], Path]

ALL = pipeline_pb2.STAGE_UNSPECIFIED
_IN_A_STAGE = (pipeline_pb2.ITEM_STATE_RUNNING, pipeline_pb2.ITEM_STATE_WAITING)
# Items read from the store at a time when a job resumes.
FEED_CHUNK = 256


def describe(error: BaseException) -> str:
    kind = type(error).__name__
    return f"{kind}: {error}" if isinstance(error, ServiceError) else f"{kind}: {error!r}"


def item_evaluators(spec: pipeline_pb2.JobSpec) -> list[int] | None:
    """Per-item evaluators to request ([] = all of them), or None when no per-item evaluation runs."""
    if spec.skip_evaluation:
        return None
    chosen = [e for e in spec.evaluators if e != evaluation_pb2.EVALUATOR_DIVERSITY]
    return None if spec.evaluators and not chosen else chosen


def wants_diversity(spec: pipeline_pb2.JobSpec) -> bool:
    return not spec.skip_evaluation and (
        not spec.evaluators or evaluation_pb2.EVALUATOR_DIVERSITY in spec.evaluators
    )


def new_item(job_seed: int, index: int) -> pipeline_pb2.Item:
    """An item as it is before it starts: pending items are not stored, they follow from the job."""
    return pipeline_pb2.Item(
        index=index,
        state=pipeline_pb2.ITEM_STATE_PENDING,
        story_seed=derive_seed(job_seed, index, "story"),
        image_seed=derive_seed(job_seed, index, "image"),
    )


Mark = tuple[int, str]


def tally(item: pipeline_pb2.Item, stages: Sequence[int]) -> tuple[Mark, ...]:
    """The counters one item adds 1 to, as (stage, outcome); stage ALL holds the item totals."""
    marks: list[Mark] = []
    if item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
        marks.append((ALL, "succeeded"))
    elif item.state == pipeline_pb2.ITEM_STATE_FAILED:
        marks.append((ALL, "failed"))
    for stage, outcome in zip(stages, vocabulary.stage_outcomes(item, stages), strict=True):
        if outcome is not None:
            marks.append((stage, outcome))
    return tuple(marks)


def totals_of(job: pipeline_pb2.Job) -> Counter[Mark]:
    """The counters a job was stored with (to resume counting where it stopped)."""
    totals: Counter[Mark] = Counter(
        {(ALL, "succeeded"): job.items_succeeded, (ALL, "failed"): job.items_failed}
    )
    for counts in job.stages:
        for outcome in ("done", "failed", "running", "waiting"):
            totals[counts.stage, outcome] = getattr(counts, outcome)
    return totals


def timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


@dataclass(eq=False)
class Work:
    """One item on its way through the pipeline."""

    item: pipeline_pb2.Item
    # Artifacts may exist from an earlier run: look before calling a stage.
    check_artifacts: bool
    # The rendered image's bytes between render and evaluation, so evaluation need not read them back.
    image_data: bytes = b""


class JobFileWriter:
    """Writes job.json on a worker thread; while one write runs, only the latest job waits for the next."""

    def __init__(self, files: JobFiles):
        self._files = files
        self._latest: pipeline_pb2.Job | None = None
        self._writing: asyncio.Task[None] | None = None

    def request(self, job: pipeline_pb2.Job) -> None:
        self._latest = without_items(job)
        if self._writing is None or self._writing.done():
            self._writing = asyncio.create_task(self._drain())

    async def write(self, job: pipeline_pb2.Job) -> None:
        """Writes `job` and returns once it is on disk."""
        self.request(job)
        assert self._writing is not None
        await asyncio.shield(self._writing)

    async def _drain(self) -> None:
        while self._latest is not None:
            job, self._latest = self._latest, None
            try:
                await asyncio.to_thread(self._files.write_job, job)
            except OSError:
                logger.exception("job %s: could not write %s", job.id, self._files.job_path)


class JobRunner:
    def __init__(
        self,
        job: pipeline_pb2.Job,
        *,
        stages: Stages,
        policy: PipelinePolicy,
        limits: dict[int, asyncio.Semaphore],
        gates: dict[int, ServiceGate],
        files: JobFiles,
        journal: Journal,
        store: Store | None = None,
        resumed: bool = False,
        gallery: Gallery | None = None,
        summarize_set: bool = True,
        keep_items: bool = False,
        metrics: JobMetrics | None = None,
    ):
        """`resumed`: the job ran before (its items are read from `store`, artifacts may exist).
        `keep_items`: ended items stay in `ended` (RunItem's single item)."""
        self.job = job
        self._stages, self._policy, self._limits, self._gates = stages, policy, limits, gates
        self._files, self._journal, self._store = files, journal, store
        self._resumed, self._gallery, self._summarize_set = resumed, gallery, summarize_set
        self._metrics = metrics or JobMetrics(None)
        self._job_file = JobFileWriter(files)
        self.ended: list[pipeline_pb2.Item] | None = [] if keep_items else None
        spec = job.spec
        self._max_wait_s = spec.max_wait_s if spec.HasField("max_wait_s") else None
        inline = spec.story.inline_pool
        self._inline_pool = (
            parse_pool(inline.name, inline.content, inline.format)
            if spec.story.HasField("inline_pool")
            else None
        )
        self._item_evaluators = item_evaluators(spec)
        self._alignment = self._alignment_options()
        steps: list[tuple[int, Callable[[Work], Awaitable[bool]]]] = [(STORY, self._story)]
        if not spec.skip_render:
            steps.append((RENDER, self._render))
        if self._item_evaluators is not None:
            steps.append((EVALUATE, self._evaluate))
        # Twice as many workers as calls allowed in flight: while one worker writes its artifact and
        # records the result, another already holds the stage's slot, so the engine never waits on us.
        self._pipeline = [
            PipelineStage(vocabulary.label(vocabulary.Stage, stage), 2 * policy.of(stage).concurrency, step)
            for stage, step in steps
        ]
        self._stage_ids = [stage for stage, _ in steps]
        self._last_stage = self._stage_ids[-1]
        # Items in memory (fed and not ended) with what each adds to the totals.
        self._live: dict[int, tuple[pipeline_pb2.Item, tuple[Mark, ...]]] = {}
        # Items changed since the totals were last brought up to date (`_count`, once per batch).
        self._uncounted: dict[int, pipeline_pb2.Item] = {}
        self._totals = totals_of(job) if resumed else Counter()
        # The earliest wait of this job's items in each stage that has items waiting.
        self._waits: dict[int, pipeline_pb2.ServiceWait] = {}
        self._shown_waits: frozenset[int] = frozenset()
        self._ending: asyncio.Future[None] | None = None
        # Why a change of this job could not be stored (an artifact refused): the job fails with it.
        self._broken: BaseException | None = None
        journal.materialize = self._materialize
        journal.broken = self._break

    async def run(self, slot: asyncio.Semaphore | None = None) -> None:
        """Runs the job to its end. Cancelling the task leaves the job as it is (to resume at the next
        start, or to be ended by `end(JOB_STATE_CANCELLED)`)."""
        try:
            if slot is None:
                await self._run()
            else:
                self._metrics.state("queued")
                async with slot:
                    await self._run()
        except Exception as error:
            logger.exception("job %s failed", self.job.id)
            self.job.error = describe(error)
            await self.end(pipeline_pb2.JOB_STATE_FAILED)
        finally:
            self._metrics.close()

    async def _run(self) -> None:
        self._metrics.state("running")
        if self.job.state != pipeline_pb2.JOB_STATE_RUNNING:
            self.job.state = pipeline_pb2.JOB_STATE_RUNNING
            self.job.started_at.CopyFrom(now())
            self._journal.job(self.job)
            self._job_file.request(self.job)
        # Every item that has not ended waits for the first stage (the runner feeds them as it has room).
        ended = self._totals[ALL, "succeeded"] + self._totals[ALL, "failed"]
        self._metrics.queued(self._stage_ids[0], self.job.spec.items - ended)
        await run_pipeline(self._work(), self._pipeline)
        if self._store is not None:
            await self._store.flush()
        self._check_stored()
        if self._summarize_set and not self.job.spec.skip_evaluation:
            self.job.summary.CopyFrom(await self._summary())
        await self.end(pipeline_pb2.JOB_STATE_SUCCEEDED)

    async def _work(self) -> AsyncIterator[Work]:
        """The items that have not ended, in index order, read from the store a chunk at a time."""
        job = self.job
        for start in range(0, job.spec.items, FEED_CHUNK):
            stop = min(job.spec.items, start + FEED_CHUNK)
            stored = {}
            if self._resumed and self._store is not None:
                stored = {item.index: item for item in await self._store.items_in_range(job.id, start, stop)}
            for index in range(start, stop):
                item = stored.get(index)
                if item is None:  # a new item counts for nothing yet
                    item = new_item(job.seed, index)
                    self._live[index] = (item, ())
                elif item.state not in vocabulary.ENDED_ITEM_STATES:  # already in the totals
                    self._live[index] = (item, tally(item, self._stage_ids))
                else:
                    continue
                yield Work(item, check_artifacts=self._resumed)

    # Stages. Each reads its artifact back if it may exist, else calls the stage and writes the artifact.

    async def _story(self, work: Work) -> bool:
        item = work.item
        story = await asyncio.to_thread(self._files.read_story, item.index) if work.check_artifacts else None
        write = None
        if story is None:
            spec = self.job.spec
            story = await self._attempt(
                item, STORY, lambda: self._stages.story.write(spec.story, item.index, item.story_seed)
            )
            if story is None:
                return False
            write = self._files.story_writes(item.index, story)
        item.story.CopyFrom(story)
        item.artifacts.story_path = f"{ITEMS_DIR}/{item.index:05d}/{STORY_FILE}"
        return await self._completed(item, STORY, write)

    async def _render(self, work: Work) -> bool:
        item = work.item
        image = None
        if work.check_artifacts:
            image = await asyncio.to_thread(self._files.read_image, item.index, with_data=False)
        write = None
        if image is None:
            request = render_pb2.RenderRequest()
            request.CopyFrom(self.job.spec.render)
            request.prompt, request.seed, request.story_id = item.story.text, item.image_seed, item.story.id

            def progress(step: int, total: int) -> None:
                self._journal.progress(item.index, Progress(RENDER, step, total))

            rendered = await self._attempt(
                item, RENDER, lambda: self._stages.render.render(request, progress)
            )
            if rendered is None:
                return False
            write = self._files.image_writes(item.index, rendered)
            work.image_data = rendered.data
            image = image_metadata(rendered)
        item.image.CopyFrom(image)
        item.artifacts.image_path = self._files.relative_image_path(item.index, image.format)
        return await self._completed(item, RENDER, write)

    async def _evaluate(self, work: Work) -> bool:
        item = work.item
        evaluation = None
        if work.check_artifacts:
            evaluation = await asyncio.to_thread(self._files.read_evaluation, item.index)
        write = None
        if evaluation is None:
            subject = self._subject(item)
            if not self.job.spec.skip_render:
                subject.image.CopyFrom(item.image)
                subject.image.data = work.image_data or await asyncio.to_thread(
                    self._files.image_path(item.index, item.image.format).read_bytes
                )
            request = evaluation_pb2.EvaluateItemRequest(
                item=subject, evaluators=self._item_evaluators, alignment=self._alignment
            )
            evaluation = await self._attempt(item, EVALUATE, lambda: self._stages.evaluate.evaluate(request))
            if evaluation is None:
                return False
            write = self._files.evaluation_writes(item.index, evaluation)
        work.image_data = b""
        item.evaluation.CopyFrom(evaluation)
        item.artifacts.evaluation_path = f"{ITEMS_DIR}/{item.index:05d}/{EVALUATION_FILE}"
        return await self._completed(item, EVALUATE, write)

    def _subject(self, item: pipeline_pb2.Item) -> evaluation_pb2.EvaluationItem:
        """The item as the evaluation service takes it, with the exemplars its story was written from:
        by reference for a named pool, as text for the job's inline pool (which the service cannot know)."""
        subject = evaluation_pb2.EvaluationItem(id=item.story.id, story=item.story.text)
        for ref in item.story.provenance.exemplars:
            entry = (
                self._inline_pool.get(ref.id)
                if self._inline_pool and ref.pool == self._inline_pool.name
                else None
            )
            if entry is not None:
                subject.exemplars.append(entry.story)
            else:
                subject.exemplar_refs.append(ref)
        return subject

    def _alignment_options(self) -> evaluation_pb2.AlignmentOptions:
        """The job's alignment options; controls drawn with the job seed (and the item id) unless the spec
        sets one, from the pool the stories were written with, so a rerun asks the same controls."""
        options = evaluation_pb2.AlignmentOptions()
        options.CopyFrom(self.job.spec.alignment)
        if not options.HasField("control_seed"):
            options.control_seed = self.job.seed
        if not options.control_pool and not options.control_stories and self._inline_pool is None:
            options.control_pool = self.job.spec.story.pool
        return options

    async def _attempt(
        self, item: pipeline_pb2.Item, stage: int, call: Callable[[], Awaitable[R]]
    ) -> R | None:
        """The stage's result, or None once the item failed (recorded with the stage and the reason).
        While the stage's service is unavailable the item waits at the service's gate."""
        name = pipeline_pb2.Stage.Name(stage)
        gate = self._gates[stage]

        def started(probe: bool) -> None:
            item.attempts[name] = item.attempts[name] + 1
            self._metrics.attempt(stage, item.index)
            if probe:
                return  # still waiting: a probe of a closed gate; its attempt is recorded with the outcome
            item.state, item.stage = pipeline_pb2.ITEM_STATE_RUNNING, stage
            item.ClearField("waiting")
            self._changed(item)

        def waiting(outage: Outage, deadline: float) -> None:
            item.state, item.stage = pipeline_pb2.ITEM_STATE_WAITING, stage
            item.waiting.CopyFrom(
                pipeline_pb2.ServiceWait(
                    service=gate.service,
                    reason=outage.reason,
                    since=timestamp(outage.since),
                    deadline=timestamp(deadline),
                )
            )
            if stage not in self._waits:
                self._waits[stage] = pipeline_pb2.ServiceWait()
                self._waits[stage].CopyFrom(item.waiting)
            self._changed(item)

        max_wait_s = self._max_wait_s if self._max_wait_s is not None else gate.policy.max_wait_s
        try:
            result = await retry(
                lambda: gate.call(
                    lambda probe: self._once(stage, call, lambda: started(probe)),
                    max_wait_s=max_wait_s,
                    on_wait=waiting,
                ),
                self._policy.retry,
            )
        except Exception as error:
            item.state, item.stage = pipeline_pb2.ITEM_STATE_FAILED, stage
            item.ClearField("waiting")
            label, attempts = vocabulary.label(vocabulary.Stage, stage), item.attempts[name]
            item.error = f"{label} failed after {attempts} attempt(s): {describe(error)}"
            self._metrics.finished(stage, item.index, error)
            self._changed(item)
            return None
        self._metrics.finished(stage, item.index)
        return result

    async def _once(self, stage: int, call: Callable[[], Awaitable[R]], started: Callable[[], None]) -> R:
        async with self._limits[stage]:
            started()
            return await within(self._policy.of(stage).deadline_s, call)

    async def _completed(
        self, item: pipeline_pb2.Item, stage: int, write: list[ArtifactWrite] | None
    ) -> bool:
        """Records the stage as done, with the artifacts to write first (None: read back on resume)."""
        position = self._stage_ids.index(stage)
        following = self._stage_ids[position + 1] if position + 1 < len(self._stage_ids) else None
        self._metrics.completed(stage, item.index, following)  # read back from disk: it leaves the queue too
        if item.state in _IN_A_STAGE and item.stage > stage:
            return True  # an artifact read back on resume, recorded before the restart
        item.stage = stage
        item.ClearField("waiting")
        last = stage == self._last_stage
        item.state = pipeline_pb2.ITEM_STATE_SUCCEEDED if last else pipeline_pb2.ITEM_STATE_RUNNING
        self._changed(item, artifacts=write or ())
        if self._store is not None:
            await self._store.room()
            self._check_stored()
        elif write is not None:  # RunItem keeps no store: its artifacts are written here
            await asyncio.to_thread(write_artifacts, write, self._files.fsync)
        return True

    # Set level.

    async def _summary(self) -> evaluation_pb2.SetSummary:
        summary = await asyncio.to_thread(self._files.read_summary)
        if summary is not None:
            return summary
        members = await self._members()
        request = evaluation_pb2.SummarizeSetRequest(
            items=members,
            diversity=self.job.spec.diversity,
            skip_diversity=not wants_diversity(self.job.spec),
        )
        gate = self._gates[EVALUATE]
        max_wait_s = self._max_wait_s if self._max_wait_s is not None else gate.policy.max_wait_s
        try:
            summary = await retry(
                lambda: gate.call(
                    lambda probe: self._once(
                        EVALUATE, lambda: self._stages.evaluate.summarize(request), lambda: None
                    ),
                    max_wait_s=max_wait_s,
                    on_wait=lambda outage, deadline: None,
                ),
                self._policy.retry,
            )
        except Exception as error:
            failed = common_pb2.EvaluatorStatus(
                state=common_pb2.EvaluatorStatus.STATE_FAILED, reason=f"set summary: {describe(error)}"
            )
            return evaluation_pb2.SetSummary(
                items=len(members), alignment_status=failed, complexity_status=failed
            )  # not written: the next resume asks again
        await asyncio.to_thread(self._files.write_summary, summary)
        return summary

    async def _members(self) -> list[evaluation_pb2.SetMember]:
        """Every item of the job as the set summary takes it, from the store a page at a time (or the
        items RunItem kept); each keeps only its story and evaluation, not the whole item."""
        if self._store is None:
            return [self._member(item) for item in self.ended or []]
        await self._store.flush()
        members: list[evaluation_pb2.SetMember] = []
        for start in range(0, self.job.spec.items, 1000):
            stored = await self._store.items_in_range(self.job.id, start, start + 1000)
            members.extend(self._member(item) for item in stored)
        return members

    @staticmethod
    def _member(item: pipeline_pb2.Item) -> evaluation_pb2.SetMember:
        member = evaluation_pb2.SetMember(item_id=item.story.id or str(item.index), story=item.story.text)
        if item.HasField("evaluation"):
            member.evaluation.CopyFrom(item.evaluation)
        else:
            member.not_evaluated_reason = item.error or vocabulary.label(vocabulary.ItemState, item.state)
        return member

    # State and events.

    def _break(self, error: BaseException) -> None:
        self._broken = self._broken or error

    def _check_stored(self) -> None:
        """Raises why a change of this job could not be stored: the job cannot go on without it."""
        if self._broken is not None:
            raise self._broken

    def _changed(self, item: pipeline_pb2.Item, *, artifacts: Sequence[ArtifactWrite] = ()) -> None:
        self._uncounted[item.index] = item
        self._journal.items(self.job, [item], artifacts=artifacts)
        if self.ended is not None and item.state in vocabulary.ENDED_ITEM_STATES:
            self.ended.append(item)

    async def end(self, state: int) -> None:
        """Ends the job in `state`; items that have not ended are cancelled (nothing will run them). A
        job that succeeded gets its gallery; job.json is written once, with the final state. A job ends
        once: a later call waits for that end (whatever its state) and changes nothing."""
        if self._ending is None:
            self._ending = asyncio.ensure_future(self._end(state))
        await asyncio.shield(self._ending)

    async def _end(self, state: int) -> None:
        # The job in memory keeps its state until the end is recorded: changes still to be stored must
        # not carry the final state before the gallery and job.json are written.
        self._metrics.ended(vocabulary.label(vocabulary.JobState, state))
        self._journal.flush()
        self._count()
        cancelled = [item for item, _ in self._live.values()]
        for item in cancelled:
            item.state = pipeline_pb2.ITEM_STATE_CANCELLED
            item.ClearField("waiting")
            self._uncounted[item.index] = item
        self._count()
        self._live.clear()
        for stage in self._stage_ids:  # nothing is in a stage any more, stored items included
            self._totals[stage, "running"] = self._totals[stage, "waiting"] = 0
        self._waits.clear()
        final = pipeline_pb2.Job()
        final.CopyFrom(self._materialize())
        final.state = state
        final.ended_at.CopyFrom(now())
        if state == pipeline_pb2.JOB_STATE_SUCCEEDED and self._gallery is not None:
            await self._publish_gallery(final)
        await self._job_file.write(final)
        self.job.CopyFrom(final)
        await self._journal.finished(self.job, cancelled)

    async def _publish_gallery(self, job: pipeline_pb2.Job) -> None:
        assert self._gallery is not None
        items = None
        if self._store is not None:  # the items as stored: faster to read than every artifact's JSON
            await self._store.flush()
            store, files, job_id, total = self._store, self._files, job.id, job.spec.items

            def items() -> Iterable[ItemRecord]:
                return (ItemRecord.of_item(files, item) for item in store.iter_items(job_id, total))

        try:
            path = await asyncio.to_thread(self._gallery, self._files.directory, without_items(job), items)
        except Exception:
            logger.exception("job %s: the gallery could not be written", job.id)
            return
        job.gallery_path = str(path)

    def _count(self) -> None:
        """Updates the totals by what the items changed since the last count now count for, each once
        however often it changed (the job follows in _materialize); lets the items that ended go."""
        changed, self._uncounted = self._uncounted, {}
        totals, live, stages = self._totals, self._live, self._stage_ids
        for index, item in changed.items():
            marks = tally(item, stages)
            before = live.get(index)
            if before is not None:
                for mark in before[1]:
                    totals[mark] -= 1
            for mark in marks:
                totals[mark] += 1
            if item.state in vocabulary.ENDED_ITEM_STATES:
                live.pop(index, None)
            else:
                live[index] = (item, marks)

    def _materialize(self) -> pipeline_pb2.Job:
        """Writes the totals into the job's counters; the journal calls it once per batch of changes."""
        self._count()
        totals, job = self._totals, self.job
        job.updated_at.CopyFrom(now())
        job.items_succeeded, job.items_failed = totals[ALL, "succeeded"], totals[ALL, "failed"]
        if len(job.stages) != len(self._stage_ids):
            del job.stages[:]
            for stage in self._stage_ids:
                job.stages.add(stage=stage)
        for counts in job.stages:
            stage = counts.stage
            counts.done, counts.running = totals[stage, "done"], totals[stage, "running"]
            counts.failed, counts.waiting = totals[stage, "failed"], totals[stage, "waiting"]
            if counts.waiting and stage in self._waits:
                if not counts.HasField("wait"):
                    counts.wait.CopyFrom(self._waits[stage])
            else:
                self._waits.pop(stage, None)
                if counts.HasField("wait"):
                    counts.ClearField("wait")
        if (shown := frozenset(self._waits)) != self._shown_waits:
            self._shown_waits = shown
            self._job_file.request(job)  # "waiting for <service>" began or ended: job.json shows it
        return job
