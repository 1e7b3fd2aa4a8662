"""The SDK and the CLI against the real orchestrator (JobManager over SQLite) with in-process stages."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from storytelling.client import (
    AsyncClient,
    Client,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    job_spec,
)
from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.service import PipelineService, gallery_writer
from storytelling.orchestrator.store import Store
from storytelling.v1 import pipeline_pb2

from tests.client.server import serve_in_thread
from tests.client.test_cli import storytelling
from tests.orchestrator.conftest import local_stages, policy

P = pipeline_pb2


@pytest.fixture
def orchestrator(tmp_path: Path) -> Iterator[str]:
    def build() -> PipelineService:
        store = Store(tmp_path / "orchestrator.sqlite3")
        jobs = JobManager(
            store,
            local_stages(story=0.02, render=0.02, evaluate=0.02),
            data_dir=tmp_path,
            policy=policy(),
            max_items=10,
            max_running_jobs=2,
            gallery=gallery_writer(),
        )
        return PipelineService(jobs, store, connections=[])

    with serve_in_thread(build) as address:
        yield address


def test_progress_agrees_with_the_orchestrators_counts(orchestrator: str) -> None:
    with Client(orchestrator) as client:
        job = client.create_job(job_spec(4, seed=3))
        done_counts = []
        for progress in client.watch_progress(job.id):
            done_counts.append({s: st.done for s, st in progress.stages.items()})
        final = client.get_job(job.id)
    assert progress.ended and final.state == P.JOB_STATE_SUCCEEDED
    server = {c.stage: (c.done, c.failed, c.running) for c in final.stages}
    ours = {s: (st.done, st.failed, st.running) for s, st in progress.stages.items()}
    assert (
        ours == server == {P.STAGE_STORY: (4, 0, 0), P.STAGE_RENDER: (4, 0, 0), P.STAGE_EVALUATE: (4, 0, 0)}
    )
    # Stories for later items were written while earlier ones were still painted and evaluated.
    assert any(d[P.STAGE_STORY] > d[P.STAGE_EVALUATE] for d in done_counts)
    assert Path(final.gallery_path).is_file()


def test_errors_from_the_orchestrator(orchestrator: str) -> None:
    with Client(orchestrator) as client:
        with pytest.raises(InvalidArgumentError) as error:
            client.create_job(job_spec(11))
        assert error.value.field == "spec.items"
        with pytest.raises(NotFoundError):
            client.get_job("no-such-job")
        job = client.wait(client.create_job(job_spec(1)).id)
        with pytest.raises(FailedPreconditionError):
            client.cancel_job(job.id)


def test_cli_paint_and_status(orchestrator: str) -> None:
    painted = storytelling(
        "paint", "-n", "3", "--seed", "9", "--name", "real orchestrator", address=orchestrator
    )
    assert painted.returncode == 0, painted.stdout + painted.stderr
    gallery = Path(painted.stdout.splitlines()[-1].removeprefix("gallery: "))
    page = gallery.read_text()
    assert "real orchestrator" in page and page.count('<article class="item"') == 3
    job_id = painted.stdout.split()[1]
    status = storytelling("status", job_id, address=orchestrator)
    assert status.returncode == 0 and "succeeded, 3/3 items succeeded" in status.stdout


async def test_fifty_concurrent_clients_create_and_watch(orchestrator: str) -> None:
    async def one(n: int) -> tuple[list[P.JobEvent], P.Job]:
        async with AsyncClient(orchestrator) as client:
            job = await client.create_job(job_spec(1, seed=n, name=f"client {n}"))
            events = [event async for event in client.watch(job.id)]
            return events, await client.get_job(job.id)

    results = await asyncio.gather(*(one(n) for n in range(50)))
    assert len({job.id for _, job in results}) == 50
    for events, job in results:
        changes = [e.sequence for e in events if e.HasField("item")]
        assert changes == sorted(set(changes)) and job.state == P.JOB_STATE_SUCCEEDED
        assert [e.item for e in events if e.HasField("item")][-1] == job.items[0]
        assert events[-1].finished.items_succeeded == 1
