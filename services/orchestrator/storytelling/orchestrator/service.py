"""The orchestrator service: JobManager over SQLite and the downstream services, on the shared runtime."""

from collections.abc import Sequence
from typing import Self

import grpc
from prometheus_client.registry import Collector

from storytelling.api.gallery import write_gallery
from storytelling.runtime.calls import CallerCredentials
from storytelling.runtime.service import Service
from storytelling.v1 import pipeline_pb2, pipeline_pb2_grpc

from .clients import Connection, EvaluationClient, RenderClient, StoryClient
from .jobs import JobManager
from .metrics import PipelineMetrics
from .runner import Gallery
from .servicer import PipelineServicer
from .settings import OrchestratorSettings
from .stages import Stages
from .store import Store


def gallery_writer() -> Gallery:
    """The API package's gallery page, written from the artifacts at the end of every job."""
    return write_gallery


class PipelineService(Service):
    name = "orchestrator"

    def __init__(self, jobs: JobManager, store: Store, connections: Sequence[Connection]):
        self.jobs = jobs
        self._store = store
        self._connections = connections

    @classmethod
    def from_settings(cls, settings: OrchestratorSettings) -> Self:
        credentials = CallerCredentials(settings.downstream(), settings.credentials_reload_s)
        story, render, evaluation = connections = [
            Connection(address, settings.max_message_mb, credentials)
            for address in (settings.story_address, settings.render_address, settings.evaluation_address)
        ]
        store = Store(
            settings.data_dir / "orchestrator.sqlite3",
            sync_files=settings.data_dir if settings.sync_files else None,
        )
        jobs = JobManager(
            store,
            Stages(StoryClient(story), RenderClient(render), EvaluationClient(evaluation)),
            data_dir=settings.data_dir,
            policy=settings.pipeline(),
            wait=settings.wait(),
            max_items=settings.max_items_per_job,
            max_items_per_get=settings.max_items_per_get,
            max_running_jobs=settings.max_running_jobs,
            gallery=gallery_writer(),
            quotas=settings.quotas(),
            metrics=PipelineMetrics(),
        )
        return cls(jobs, store, connections)

    def register(self, server: grpc.aio.Server) -> list[str]:
        pipeline_pb2_grpc.add_PipelineServiceServicer_to_server(PipelineServicer(self.jobs), server)
        return [pipeline_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name]

    def collectors(self) -> list[Collector]:
        metrics = self.jobs.metrics.collectors() if self.jobs.metrics is not None else []
        return [self.jobs.quotas, *metrics]

    async def start(self) -> None:
        for connection in self._connections:
            await connection.start()
        await self.jobs.start()

    async def ready(self) -> tuple[bool, str]:
        return True, f"{self.jobs.running_jobs} job(s) running"

    async def stop(self) -> None:
        await self.jobs.stop()
        for connection in self._connections:
            await connection.close()
        self._store.close()
