"""A JobManager over SQLite in a temporary directory and in-process stages (see stages.py)."""

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.policy import PipelinePolicy, StagePolicy
from storytelling.orchestrator.retry import RetryPolicy
from storytelling.orchestrator.stages import Stages
from storytelling.orchestrator.store import Store
from storytelling.v1 import pipeline_pb2

from .stages import LocalEvaluate, LocalRender, LocalStory

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)


def policy(concurrency: int = 2, deadline_s: float = 10.0, retry: RetryPolicy = FAST_RETRY) -> PipelinePolicy:
    stage = StagePolicy(concurrency=concurrency, deadline_s=deadline_s)
    return PipelinePolicy(story=stage, render=stage, evaluate=stage, retry=retry)


def local_stages(**latencies: float) -> Stages:
    return Stages(
        story=LocalStory(latency_s=latencies.get("story", 0.0)),
        render=LocalRender(latency_s=latencies.get("render", 0.0)),
        evaluate=LocalEvaluate(latency_s=latencies.get("evaluate", 0.0)),
    )


def spec(items: int = 3, seed: int | None = 7, **fields) -> pipeline_pb2.JobSpec:
    return pipeline_pb2.JobSpec(items=items, seed=seed, **fields)


ManagerFactory = Callable[..., JobManager]


@pytest.fixture
async def make_manager(tmp_path: Path) -> AsyncIterator[ManagerFactory]:
    """Builds started managers on one data directory; stops them all at the end of the test."""
    started: list[tuple[JobManager, Store]] = []

    async def make(
        stages: Stages | None = None, pipeline: PipelinePolicy | None = None, **options
    ) -> JobManager:
        store = Store(tmp_path / "orchestrator.sqlite3")
        manager = JobManager(
            store,
            stages or local_stages(),
            data_dir=tmp_path,
            policy=pipeline or policy(),
            max_items=options.pop("max_items", 100),
            max_running_jobs=options.pop("max_running_jobs", 8),
            **options,
        )
        await manager.start()
        started.append((manager, store))
        return manager

    yield make
    for manager, store in started:
        await manager.stop()
        store.close()


async def finished(manager: JobManager, job_id: str, *, items: bool = True) -> pipeline_pb2.Job:
    """Watches the job to its end and returns it, with its items unless `items` is False."""
    async for _ in manager.watch(job_id):
        pass
    return await manager.get(job_id, omit_items=not items)
