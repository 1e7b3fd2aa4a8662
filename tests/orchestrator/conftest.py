"""A JobManager over SQLite in a temporary directory and in-process stages (see stages.py)."""

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.policy import PipelinePolicy, StagePolicy
from storytelling.orchestrator.retry import RetryPolicy
from storytelling.orchestrator.stages import Stages
from storytelling.orchestrator.store import Store
from storytelling.v1 import pipeline_pb2

from .stages import LocalEvaluate, LocalRender, LocalStory, Simulated

FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff_s=0.01, max_backoff_s=0.05)
# The jobs here end in well under a second. A job that never ends (a bug that loses an item) fails its
# test after this long, naming the job, instead of hanging until pytest-timeout or mutmut give up.
JOB_END_S = 30.0


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The building blocks run first: a broken deadline or retry fails them in milliseconds, where a job
    test could hang on a job that never stops (mutation testing stops at the first failure)."""
    items.sort(key=lambda item: "test_building_blocks.py" not in item.nodeid)


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
    await ended_events(manager, job_id)
    return await manager.get(job_id, omit_items=not items)


async def ended_events(manager: JobManager, job_id: str, after: int = 0) -> list[pipeline_pb2.JobEvent]:
    """Every event of a watch from `after` to the job's end; fails if the job does not end in JOB_END_S."""
    try:
        async with asyncio.timeout(JOB_END_S):
            return [event async for event in manager.watch(job_id, after)]
    except TimeoutError:
        raise AssertionError(f"job {job_id} did not end within {JOB_END_S:.0f} s") from None


async def until_held(stage: Simulated, count: int, manager: JobManager, job_id: str) -> None:
    """Returns once `count` calls of `stage` are held; fails at once if the job ends first."""
    holding = asyncio.ensure_future(stage.until_holding(count, timeout_s=JOB_END_S))
    ending = asyncio.ensure_future(ended_events(manager, job_id))
    try:
        first, _ = await asyncio.wait({holding, ending}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        holding.cancel()
        ending.cancel()
    if holding not in first:
        raise AssertionError(f"job {job_id} ended before {count} calls were held")
    holding.result()
