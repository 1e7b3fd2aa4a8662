"""Small but real in-memory PipelineService and EvaluationService for the SDK and CLI tests.

The pipeline runs items through story, render (with step progress) and evaluation on asyncio, keeps an
event log with sequence numbers, writes artifacts in the job layout and builds the gallery, and raises
the runtime's domain errors for bad input, so the tests exercise the real status-code mapping.
"""

from __future__ import annotations

import asyncio
import io
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from PIL import Image as PILImage
from storytelling.api.gallery import write_gallery
from storytelling.api.layout import JOB_FILE, SUMMARY_FILE, write_item, write_message
from storytelling.runtime.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from storytelling.runtime.service import Service
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc

P = pipeline_pb2
OK = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="fake")
ITEM_CAP = 20
PAINTERS = ("", "sketch")
RENDER_STEPS = 3
FAIL_RENDER_THEME = "fail-render"  # a job with this theme fails item 1's render, to test failed items


def png(seed: int) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", (32, 24), (seed * 50 % 256, 90, 160)).save(out, format="PNG")
    return out.getvalue()


@dataclass
class _Job:
    job: P.Job
    items: list[P.Item]
    events: list[P.JobEvent] = field(default_factory=list)
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    task: asyncio.Task | None = None

    @property
    def ended(self) -> bool:
        return self.job.state in (P.JOB_STATE_SUCCEEDED, P.JOB_STATE_FAILED, P.JOB_STATE_CANCELLED)


class FakePipeline(pipeline_pb2_grpc.PipelineServiceServicer):
    def __init__(self, data_dir: Path, stage_delay_s: float) -> None:
        self.data_dir = data_dir
        self.delay = stage_delay_s
        # Set by a test: the next WatchJob stream fails with UNAVAILABLE after this many events.
        self.drop_watch_after: int | None = None
        self.jobs: dict[str, _Job] = {}
        self.by_request: dict[str, str] = {}

    # --- RPCs ---------------------------------------------------------------------------------------
    async def CreateJob(self, request: P.CreateJobRequest, context) -> P.Job:
        if request.request_id in self.by_request:
            return self._snapshot(self.jobs[self.by_request[request.request_id]], items=False)
        spec = request.spec
        _validate(spec)
        job_id = f"job-{len(self.jobs) + 1:04d}"
        directory = self.data_dir / "jobs" / job_id
        job = P.Job(
            id=job_id,
            spec=spec,
            state=P.JOB_STATE_QUEUED,
            seed=spec.seed if spec.HasField("seed") else 1,
            directory=str(directory),
        )
        job.created_at.GetCurrentTime()
        entry = _Job(job, [P.Item(index=i, state=P.ITEM_STATE_PENDING) for i in range(spec.items)])
        self.jobs[job_id] = entry
        if request.request_id:
            self.by_request[request.request_id] = job_id
        entry.task = asyncio.create_task(self._run(entry))
        return self._snapshot(entry, items=False)

    async def GetJob(self, request: P.GetJobRequest, context) -> P.Job:
        return self._snapshot(self._find(request.job_id), items=True)

    async def ListJobs(self, request: P.ListJobsRequest, context) -> P.ListJobsResponse:
        jobs = [
            j for j in reversed(self.jobs.values()) if not request.states or j.job.state in request.states
        ]
        start = int(request.page_token or 0)
        size = request.page_size or 50
        page = jobs[start : start + size]
        token = str(start + size) if start + size < len(jobs) else ""
        return P.ListJobsResponse(jobs=[self._snapshot(j, items=False) for j in page], next_page_token=token)

    async def CancelJob(self, request: P.CancelJobRequest, context) -> P.Job:
        entry = self._find(request.job_id)
        if entry.ended:
            state = P.JobState.Name(entry.job.state)
            raise FailedPrecondition(
                f"job {entry.job.id} already ended in state {state}; only queued or running jobs can be "
                "cancelled"
            )
        entry.task.cancel()
        for item in entry.items:
            if item.state in (P.ITEM_STATE_PENDING, P.ITEM_STATE_RUNNING):
                item.state = P.ITEM_STATE_CANCELLED
        await self._finish(entry, P.JOB_STATE_CANCELLED)
        return self._snapshot(entry, items=False)

    async def RunItem(self, request: P.RunItemRequest, context) -> P.Item:
        _validate(request.spec)
        item = P.Item(index=0)
        await self._run_item(None, item, request.spec)
        return item

    async def WatchJob(self, request: P.WatchJobRequest, context):
        entry = self._find(request.job_id)
        sent = request.after_sequence
        while True:
            async with entry.changed:
                pending = entry.events[sent:]
                if not pending:
                    if entry.ended:
                        return
                    await entry.changed.wait()
                    continue
            for event in pending:
                if (
                    self.drop_watch_after is not None
                    and sent - request.after_sequence >= self.drop_watch_after
                ):
                    self.drop_watch_after = None
                    raise Unavailable("orchestrator is restarting")
                yield event
                sent = event.sequence

    # --- behaviour ----------------------------------------------------------------------------------
    def _find(self, job_id: str) -> _Job:
        if job_id not in self.jobs:
            raise NotFound(f"job {job_id!r} does not exist", field="job_id")
        return self.jobs[job_id]

    def _snapshot(self, entry: _Job, *, items: bool) -> P.Job:
        job = P.Job()
        job.CopyFrom(entry.job)
        job.items_succeeded = sum(i.state == P.ITEM_STATE_SUCCEEDED for i in entry.items)
        job.items_failed = sum(i.state == P.ITEM_STATE_FAILED for i in entry.items)
        if items:
            job.items.extend(entry.items)
        return job

    async def _emit(self, entry: _Job, **event) -> None:
        async with entry.changed:
            message = P.JobEvent(sequence=len(entry.events) + 1, job_id=entry.job.id, **event)
            message.time.GetCurrentTime()
            entry.events.append(message)
            entry.changed.notify_all()

    async def _item_changed(self, entry: _Job | None, item: P.Item) -> None:
        if entry is not None:
            await self._emit(entry, item=item)

    async def _run(self, entry: _Job) -> None:
        entry.job.state = P.JOB_STATE_RUNNING
        await self._emit(entry, job_state=P.JOB_STATE_RUNNING)
        for item in entry.items:
            try:
                await self._run_item(entry, item, entry.job.spec)
            except RuntimeError as error:
                item.state, item.error = P.ITEM_STATE_FAILED, str(error)
                await self._item_changed(entry, item)
        directory = Path(entry.job.directory)
        write_message(
            directory / SUMMARY_FILE,
            evaluation_pb2.SetSummary(
                items=len(entry.items),
                alignment_status=OK,
                mean_alignment=0.5,
                diversity=evaluation_pb2.DiversityResult(status=OK, diversity=0.4, vendi_score=1.5, k=1),
            ),
        )
        await self._finish(entry, P.JOB_STATE_SUCCEEDED)

    async def _finish(self, entry: _Job, state: int) -> None:
        entry.job.state = state
        directory = Path(entry.job.directory)
        write_message(directory / JOB_FILE, self._snapshot(entry, items=False))
        write_gallery(directory)
        entry.job.gallery_path = "gallery/index.html"
        await self._emit(entry, job_state=state)
        await self._emit(entry, finished=self._snapshot(entry, items=True))

    async def _run_item(self, entry: _Job | None, item: P.Item, spec: P.JobSpec) -> None:
        item.state, item.stage = P.ITEM_STATE_RUNNING, P.STAGE_STORY
        await self._item_changed(entry, item)
        await asyncio.sleep(self.delay)
        item.story.CopyFrom(
            common_pb2.Story(id=f"story-{item.index}", text=f"Story {item.index}: a boy on a stool.")
        )
        if spec.skip_render:
            item.state = P.ITEM_STATE_SUCCEEDED
            await self._item_changed(entry, item)
            return
        item.stage = P.STAGE_RENDER
        await self._item_changed(entry, item)
        for step in range(1, RENDER_STEPS + 1):
            await asyncio.sleep(self.delay / RENDER_STEPS)
            if entry is not None:
                await self._emit(
                    entry,
                    progress=P.StageProgress(
                        item_index=item.index, stage=P.STAGE_RENDER, step=step, total=RENDER_STEPS
                    ),
                )
        if spec.story.theme == FAIL_RENDER_THEME and item.index == 1:
            raise RuntimeError("render: painter 'sketch' crashed after 3 attempts")
        image = common_pb2.Image(
            data=png(item.index),
            format=common_pb2.IMAGE_FORMAT_PNG,
            width=32,
            height=24,
            painter=common_pb2.PainterRef(kind="sketch", is_fallback=True),
        )
        item.stage = P.STAGE_EVALUATE
        await self._item_changed(entry, item)
        await asyncio.sleep(self.delay)
        evaluation = evaluation_pb2.ItemEvaluation(
            item_id=item.story.id, alignment=evaluation_pb2.AlignmentResult(status=OK, score=0.5)
        )
        if entry is not None:
            write_item(
                Path(entry.job.directory), item.index, story=item.story, image=image, evaluation=evaluation
            )
        item.image.CopyFrom(_without_data(image))
        item.evaluation.CopyFrom(evaluation)
        item.state = P.ITEM_STATE_SUCCEEDED
        await self._item_changed(entry, item)


def _without_data(image: common_pb2.Image) -> common_pb2.Image:
    meta = common_pb2.Image()
    meta.CopyFrom(image)
    meta.ClearField("data")
    return meta


def _validate(spec: P.JobSpec) -> None:
    if not 1 <= spec.items <= ITEM_CAP:
        raise InvalidArgument(f"must be in [1, {ITEM_CAP}], got {spec.items}", field="spec.items")
    if spec.render.painter not in PAINTERS:
        raise InvalidArgument(
            f"unknown painter {spec.render.painter!r}; available: sketch", field="spec.render.painter"
        )


class FakeEvaluation(evaluation_pb2_grpc.EvaluationServiceServicer):
    """Text measures from word counts, complexity from the image size; alignment not run (no judge)."""

    async def EvaluateSet(self, request: evaluation_pb2.EvaluateSetRequest, context):
        without = [n for n, item in enumerate(request.items) if not item.HasField("image")]
        if 0 < len(without) < len(request.items):  # the real service's rule: every image, or none
            raise InvalidArgument(
                f"{len(request.items) - len(without)} images for {len(request.items)} stories",
                field=f"items[{without[0]}].image",
            )
        for item in request.items:
            result = evaluation_pb2.ItemEvaluation(
                item_id=item.id,
                alignment=evaluation_pb2.AlignmentResult(
                    status=common_pb2.EvaluatorStatus(
                        state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                        reason="no vision-language judge configured",
                    )
                ),
                text_measures=evaluation_pb2.TextMeasuresResult(status=OK, words=len(item.story.split())),
            )
            if item.HasField("image"):
                with PILImage.open(io.BytesIO(item.image.data)) as image:
                    result.complexity.CopyFrom(
                        evaluation_pb2.ComplexityResult(
                            status=OK, score=min(image.width * image.height / 10_000, 1.0), scorer="size/1"
                        )
                    )
            yield evaluation_pb2.EvaluateSetEvent(item=result)
        yield evaluation_pb2.EvaluateSetEvent(
            summary=evaluation_pb2.SetSummary(
                items=len(request.items),
                diversity=evaluation_pb2.DiversityResult(status=OK, diversity=0.3, vendi_score=1.2),
                alignment_status=common_pb2.EvaluatorStatus(
                    state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                    reason="no vision-language judge configured",
                ),
            )
        )


class FakeServices(Service):
    name = "fake"

    def __init__(self, data_dir: Path, stage_delay_s: float = 0.02) -> None:
        self.pipeline = FakePipeline(data_dir, stage_delay_s)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(self.pipeline, server)
        evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(FakeEvaluation(), server)
        return ["storytelling.v1.PipelineService", "storytelling.v1.EvaluationService"]
