"""The services the SDK and CLI tests talk to: the real orchestrator (JobManager over SQLite, with the
in-process stages of tests/orchestrator/stages.py) and a small EvaluationService, on one gRPC server."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
from storytelling.api.gallery import write_gallery
from storytelling.orchestrator.gate import WaitPolicy
from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.service import PipelineService
from storytelling.orchestrator.servicer import PipelineServicer
from storytelling.orchestrator.stages import Stages
from storytelling.orchestrator.store import Store
from storytelling.runtime.errors import Internal, Unavailable
from storytelling.v1 import evaluation_pb2_grpc, pipeline_pb2, pipeline_pb2_grpc

from tests.client.fake_services import FakeEvaluation
from tests.orchestrator.conftest import policy
from tests.orchestrator.stages import LocalEvaluate, LocalRender, LocalStory, item_index

ITEM_CAP = 20
FAIL_RENDER_THEME = "fail-render"  # a job with this theme fails item 1's render, to test failed items


class FailingRender(LocalRender):
    """Renders as LocalRender, except item 1 of a story written with FAIL_RENDER_THEME, and every call
    while `down` is set (a restarting painter: UNAVAILABLE; the test sets it from its own thread)."""

    def __init__(self, latency_s: float) -> None:
        super().__init__(latency_s=latency_s)
        self.down = threading.Event()

    async def render(self, request, progress=None):
        if self.down.is_set():
            raise Unavailable("painter restarting")
        if request.prompt.endswith(FAIL_RENDER_THEME) and item_index(request.story_id) == 1:
            raise Internal("painter 'sketch' crashed")
        return await super().render(request, progress)


class DroppingServicer(PipelineServicer):
    """The orchestrator's servicer, except that a test can make the next WatchJob stream fail with
    UNAVAILABLE after some events, as an orchestrator restart does."""

    def __init__(self, jobs: JobManager):
        super().__init__(jobs)
        self.drop_watch_after: int | None = None

    async def WatchJob(self, request, context) -> AsyncIterator[pipeline_pb2.JobEvent]:
        sent = 0
        async for event in super().WatchJob(request, context):
            if self.drop_watch_after is not None and sent >= self.drop_watch_after:
                self.drop_watch_after = None
                raise Unavailable("orchestrator is restarting")
            sent += 1
            yield event


class TestServices(PipelineService):
    """PipelineService over a data directory, with the stages delayed by `stage_delay_s` each."""

    __test__ = False  # not a test class, whatever pytest thinks of its name

    def __init__(self, data_dir: Path, stage_delay_s: float = 0.02) -> None:
        store = Store(data_dir / "orchestrator.sqlite3")
        self.render = FailingRender(latency_s=stage_delay_s)
        stages = Stages(
            LocalStory(latency_s=stage_delay_s), self.render, LocalEvaluate(latency_s=stage_delay_s)
        )
        jobs = JobManager(
            store,
            stages,
            data_dir=data_dir,
            policy=policy(),
            max_items=ITEM_CAP,
            max_running_jobs=4,
            wait=WaitPolicy(max_wait_s=120, first_probe_s=0.05, max_probe_s=0.2),
            gallery=write_gallery,
        )
        super().__init__(jobs, store, connections=[])
        self.pipeline = DroppingServicer(jobs)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(self.pipeline, server)
        evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(FakeEvaluation(), server)
        return ["storytelling.v1.PipelineService", "storytelling.v1.EvaluationService"]
