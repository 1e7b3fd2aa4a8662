"""Runs one job to its end: items through story, render and evaluation, then the set summary.

The runner resumes as naturally as it starts: a stage whose artifact is on disk is read back, not run,
and items that already ended are not fed again. Every change is recorded (state + event) through the
`record` collaborator before the runner goes on.
"""

import asyncio
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar

from google.protobuf import timestamp_pb2

from storytelling.api import vocabulary
from storytelling.api.layout import JobFiles, image_metadata
from storytelling.api.pools import parse_pool
from storytelling.runtime.errors import ServiceError
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2

from .metrics import JobMetrics
from .pipeline import PipelineStage, run_pipeline
from .policy import EVALUATE, RENDER, STORY, PipelinePolicy
from .retry import retry, within
from .stages import Stages

logger = logging.getLogger(__name__)

R = TypeVar("R")
Record = Callable[[pipeline_pb2.Job, Sequence[pipeline_pb2.Item], Sequence[pipeline_pb2.JobEvent]], None]
Gallery = Callable[[Path], Path | None]


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


ALL = pipeline_pb2.STAGE_UNSPECIFIED


def tally(item: pipeline_pb2.Item, stages: Sequence[int]) -> Counter[tuple[int, str]]:
    """What one item adds to its job's counters, by (stage, outcome); stage ALL holds the item totals."""
    marks: Counter[tuple[int, str]] = Counter()
    if item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
        marks[ALL, "succeeded"] = 1
    elif item.state == pipeline_pb2.ITEM_STATE_FAILED:
        marks[ALL, "failed"] = 1
    for stage in stages:
        if (outcome := vocabulary.stage_outcome(item, stage)) is not None:
            marks[stage, outcome] = 1
    return marks


def now() -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.GetCurrentTime()
    return stamp


class JobRunner:
    def __init__(
        self,
        job: pipeline_pb2.Job,
        items: list[pipeline_pb2.Item],
        *,
        stages: Stages,
        policy: PipelinePolicy,
        limits: dict[int, asyncio.Semaphore],
        files: JobFiles,
        record: Record,
        gallery: Gallery | None = None,
        summarize_set: bool = True,
        metrics: JobMetrics | None = None,
    ):
        self.job, self.items = job, items
        self._stages, self._policy, self._limits = stages, policy, limits
        self._files, self._record, self._gallery = files, record, gallery
        self._summarize_set = summarize_set
        self._metrics = metrics or JobMetrics(None)
        spec = job.spec
        inline = spec.story.inline_pool
        self._inline_pool = (
            parse_pool(inline.name, inline.content, inline.format)
            if spec.story.HasField("inline_pool")
            else None
        )
        self._item_evaluators = item_evaluators(spec)
        steps: list[tuple[int, Callable[[pipeline_pb2.Item], Awaitable[bool]]]] = [(STORY, self._story)]
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
        self._tallies = {item.index: tally(item, self._stage_ids) for item in items}
        self._totals: Counter[tuple[int, str]] = sum(self._tallies.values(), Counter())

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
            self.end(pipeline_pb2.JOB_STATE_FAILED)
        finally:
            self._metrics.close()

    async def _run(self) -> None:
        self._metrics.state("running")
        self._set_state(pipeline_pb2.JOB_STATE_RUNNING)
        await asyncio.to_thread(self._files.write_job, self.job)
        pending = [i for i in self.items if i.state not in vocabulary.ENDED_ITEM_STATES]
        self._metrics.queued(self._stage_ids[0], len(pending))
        await run_pipeline(pending, self._pipeline)
        if self._summarize_set and not self.job.spec.skip_evaluation:
            self.job.summary.CopyFrom(await self._summary())
        self.job.state = pipeline_pb2.JOB_STATE_SUCCEEDED
        if self._gallery is not None:
            await self._publish_gallery()
        self.end(pipeline_pb2.JOB_STATE_SUCCEEDED)

    # Stages. Each reads its artifact back if it exists, else calls the stage and writes the artifact.

    async def _story(self, item: pipeline_pb2.Item) -> bool:
        story = self._files.read_story(item.index)
        if story is None:
            spec = self.job.spec
            story = await self._attempt(
                item, STORY, lambda: self._stages.story.write(spec.story, item.index, item.story_seed)
            )
            if story is None:
                return False
            await asyncio.to_thread(self._files.write_story, item.index, story)
        item.story.CopyFrom(story)
        item.artifacts.story_path = self._files.relative(self._files.story_path(item.index))
        return self._completed(item, STORY)

    async def _render(self, item: pipeline_pb2.Item) -> bool:
        image = self._files.read_image(item.index, with_data=False)
        if image is None:
            request = render_pb2.RenderRequest()
            request.CopyFrom(self.job.spec.render)
            request.prompt, request.seed, request.story_id = item.story.text, item.image_seed, item.story.id

            def progress(step: int, total: int) -> None:
                event = pipeline_pb2.JobEvent(
                    progress=pipeline_pb2.StageProgress(
                        item_index=item.index, stage=RENDER, step=step, total=total
                    )
                )
                self._record(self.job, (), [event])

            rendered = await self._attempt(
                item, RENDER, lambda: self._stages.render.render(request, progress)
            )
            if rendered is None:
                return False
            await asyncio.to_thread(self._files.write_image, item.index, rendered)
            image = image_metadata(rendered)
        item.image.CopyFrom(image)
        item.artifacts.image_path = self._files.relative(self._files.image_path(item.index, image.format))
        return self._completed(item, RENDER)

    async def _evaluate(self, item: pipeline_pb2.Item) -> bool:
        evaluation = self._files.read_evaluation(item.index)
        if evaluation is None:
            subject = self._subject(item)
            if not self.job.spec.skip_render:
                image = await asyncio.to_thread(self._files.read_image, item.index, with_data=True)
                subject.image.CopyFrom(image)
            request = evaluation_pb2.EvaluateItemRequest(
                item=subject, evaluators=self._item_evaluators, alignment=self._alignment_options()
            )
            evaluation = await self._attempt(item, EVALUATE, lambda: self._stages.evaluate.evaluate(request))
            if evaluation is None:
                return False
            await asyncio.to_thread(self._files.write_evaluation, item.index, evaluation)
        item.evaluation.CopyFrom(evaluation)
        item.artifacts.evaluation_path = self._files.relative(self._files.evaluation_path(item.index))
        return self._completed(item, EVALUATE)

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
        """The stage's result, or None once the item failed (recorded with the stage and the reason)."""
        name = pipeline_pb2.Stage.Name(stage)

        def started() -> None:
            item.state, item.stage = pipeline_pb2.ITEM_STATE_RUNNING, stage
            item.attempts[name] = item.attempts[name] + 1
            self._metrics.attempt(stage, item.index)
            self._item_changed(item)

        try:
            result = await retry(lambda: self._once(stage, call, started), self._policy.retry)
        except Exception as error:
            item.state = pipeline_pb2.ITEM_STATE_FAILED
            label, attempts = vocabulary.label(vocabulary.Stage, stage), item.attempts[name]
            item.error = f"{label} failed after {attempts} attempt(s): {describe(error)}"
            self._metrics.finished(stage, item.index, error)
            self._item_changed(item)
            return None
        self._metrics.finished(stage, item.index)
        return result

    async def _once(self, stage: int, call: Callable[[], Awaitable[R]], started: Callable[[], None]) -> R:
        async with self._limits[stage]:
            started()
            return await within(self._policy.of(stage).deadline_s, call)

    def _completed(self, item: pipeline_pb2.Item, stage: int) -> bool:
        self._metrics.started(stage, item.index)  # read back from disk: it leaves the queue too
        position = self._stage_ids.index(stage)
        if position + 1 < len(self._stage_ids):
            self._metrics.queued(self._stage_ids[position + 1])
        if item.state == pipeline_pb2.ITEM_STATE_RUNNING and item.stage > stage:
            return True  # an artifact read back on resume, recorded before the restart
        item.stage = stage
        if stage == self._last_stage:
            item.state = pipeline_pb2.ITEM_STATE_SUCCEEDED
        self._item_changed(item)
        return True

    # Set level.

    async def _summary(self) -> evaluation_pb2.SetSummary:
        """The evaluation service's summary of the stored item evaluations (it owns every set number);
        items that never reached evaluation are sent with the reason, so the summary counts them."""
        summary = self._files.read_summary()
        if summary is not None:
            return summary
        request = evaluation_pb2.SummarizeSetRequest(
            items=[self._member(item) for item in self.items],
            diversity=self.job.spec.diversity,
            skip_diversity=not wants_diversity(self.job.spec),
        )
        try:
            summary = await retry(
                lambda: self._once(EVALUATE, lambda: self._stages.evaluate.summarize(request), lambda: None),
                self._policy.retry,
            )
        except Exception as error:
            failed = common_pb2.EvaluatorStatus(
                state=common_pb2.EvaluatorStatus.STATE_FAILED, reason=f"set summary: {describe(error)}"
            )
            return evaluation_pb2.SetSummary(
                items=len(self.items), alignment_status=failed, complexity_status=failed
            )  # not written: the next resume asks again
        await asyncio.to_thread(self._files.write_summary, summary)
        return summary

    @staticmethod
    def _member(item: pipeline_pb2.Item) -> evaluation_pb2.SetMember:
        member = evaluation_pb2.SetMember(item_id=item.story.id or str(item.index), story=item.story.text)
        if item.HasField("evaluation"):
            member.evaluation.CopyFrom(item.evaluation)
        else:
            member.not_evaluated_reason = item.error or vocabulary.label(vocabulary.ItemState, item.state)
        return member

    async def _publish_gallery(self) -> None:
        """Writes the gallery from the artifacts and job.json, which must show the final state first."""
        self._touch()
        try:
            await asyncio.to_thread(self._files.write_job, self.job)
            path = await asyncio.to_thread(self._gallery, self._files.directory)
        except Exception:
            logger.exception("job %s: the gallery could not be written", self.job.id)
            return
        if path is not None:
            self.job.gallery_path = str(path)

    # State and events.

    def _item_changed(self, item: pipeline_pb2.Item) -> None:
        snapshot = pipeline_pb2.Item()
        snapshot.CopyFrom(item)
        self._touch([item])
        self._record(self.job, [item], [pipeline_pb2.JobEvent(item=snapshot)])

    def _set_state(self, state: int) -> None:
        self.job.state = state
        self._touch()
        self._record(self.job, (), [pipeline_pb2.JobEvent(job_state=state)])

    def end(self, state: int) -> None:
        """Ends the job in `state`; items that have not ended are cancelled (nothing will run them)."""
        self._metrics.ended(vocabulary.label(vocabulary.JobState, state))
        cancelled = [item for item in self.items if item.state not in vocabulary.ENDED_ITEM_STATES]
        for item in cancelled:
            item.state = pipeline_pb2.ITEM_STATE_CANCELLED
        self.job.state = state
        self._touch(cancelled)
        finished = pipeline_pb2.Job()
        finished.CopyFrom(self.job)
        events = [pipeline_pb2.JobEvent(item=item) for item in cancelled]
        events += [pipeline_pb2.JobEvent(job_state=state), pipeline_pb2.JobEvent(finished=finished)]
        self._record(self.job, cancelled, events)
        self._files.write_job(self.job)

    def _touch(self, changed: Sequence[pipeline_pb2.Item] = ()) -> None:
        """Refreshes the job's counters, updating the totals by what the changed items now count for."""
        for item in changed:
            marks = tally(item, self._stage_ids)
            self._totals.subtract(self._tallies[item.index])
            self._totals.update(marks)
            self._tallies[item.index] = marks
        job, totals = self.job, self._totals
        job.updated_at.CopyFrom(now())
        job.items_succeeded, job.items_failed = totals[ALL, "succeeded"], totals[ALL, "failed"]
        del job.stages[:]
        for stage in self._stage_ids:
            job.stages.add(
                stage=stage,
                done=totals[stage, "done"],
                running=totals[stage, "running"],
                failed=totals[stage, "failed"],
            )
