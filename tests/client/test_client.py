"""The sync and asyncio SDK against a real gRPC server (the runtime's full interceptor chain)."""

from __future__ import annotations

from pathlib import Path

import pytest
from storytelling.client import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    JobProgress,
    NotFoundError,
    UnavailableError,
    job_spec,
)
from storytelling.runtime.testing import free_port
from storytelling.v1 import pipeline_pb2

from tests.client.services import TestServices

P = pipeline_pb2


def test_create_and_watch_to_the_end(address: str) -> None:
    with Client(address) as client:
        job = client.create_job(job_spec(3, mode="cor-guided", seed=7, name="three"))
        assert job.state in (P.JOB_STATE_QUEUED, P.JOB_STATE_RUNNING)
        events = list(client.watch(job.id))
        final = client.get_job(job.id)

    changes = [e.sequence for e in events if e.HasField("item")]
    assert changes == sorted(set(changes)) and changes[0] >= 1
    assert events[-1].WhichOneof("event") == "finished"
    assert any(e.WhichOneof("event") == "progress" for e in events)
    assert final.state == P.JOB_STATE_SUCCEEDED and final.items_succeeded == 3
    assert final.spec.story.mode == 2 and final.seed == 7
    assert (Path(final.directory) / final.gallery_path).is_file()


def test_watch_progress_counts_every_stage(address: str) -> None:
    with Client(address) as client:
        job = client.create_job(job_spec(4))
        snapshots = [
            (p.state, {s: (st.done, st.running) for s, st in p.stages.items()})
            for p in client.watch_progress(job.id)
        ]
    final_state, final_counts = snapshots[-1]
    assert final_state == P.JOB_STATE_SUCCEEDED
    assert final_counts == {P.STAGE_STORY: (4, 0), P.STAGE_RENDER: (4, 0), P.STAGE_EVALUATE: (4, 0)}
    # Counts never go down while the job runs.
    done = [sum(d for d, _ in counts.values()) for _, counts in snapshots]
    assert done == sorted(done) and done[0] < done[-1]


def latest(events: list[P.JobEvent]) -> dict[int, P.Item]:
    return {e.item.index: e.item for e in events if e.HasField("item")}


def test_watch_resumes_after_a_sequence(address: str) -> None:
    with Client(address) as client:
        job = client.create_job(job_spec(2))
        everything = list(client.watch(job.id))
        tail = list(client.watch(job.id, after_sequence=5))
    assert latest(tail) == {
        i: item
        for i, item in latest(everything).items()
        if any(e.sequence > 5 and e.item.index == i for e in everything if e.HasField("item"))
    }
    assert tail[-1].finished.state == P.JOB_STATE_SUCCEEDED


def test_watch_without_results_keeps_item_events_small(address: str) -> None:
    with Client(address) as client:
        job = client.create_job(job_spec(2))
        events = list(client.watch(job.id, results=False))
        items = list(client.list_items(job.id, results=False))
        full = list(client.list_items(job.id, states=["succeeded"], page_size=1))
    assert all(not e.item.HasField("story") and e.item.state for e in events if e.HasField("item"))
    assert [i.index for i in items] == [0, 1] and not items[0].HasField("evaluation")
    assert items[1].artifacts.evaluation_path == "items/00001/evaluation.json"
    assert [i.index for i in full] == [0, 1] and full[0].story.text


def test_watch_reconnects_without_losing_or_repeating_events(services: tuple[str, TestServices]) -> None:
    address, fake = services
    with Client(address) as client:
        job = client.create_job(job_spec(3))
        fake.pipeline.drop_watch_after = 4
        events = list(client.watch(job.id))
        final = client.get_job(job.id)
    assert fake.pipeline.drop_watch_after is None, "the server never dropped the stream"
    changes = [e.sequence for e in events if e.HasField("item")]
    assert changes == sorted(set(changes)), "a change was repeated after the reconnect"
    assert latest(events) == {item.index: item for item in final.items}, "a change was lost"


def test_watch_gives_up_after_the_allowed_reconnects(services: tuple[str, TestServices]) -> None:
    address, fake = services
    with Client(address) as client:
        job = client.create_job(job_spec(2))
        fake.pipeline.drop_watch_after = 1
        with pytest.raises(UnavailableError, match="orchestrator is restarting"):
            list(client.watch(job.id, reconnects=0))


def test_invalid_arguments_name_the_field(address: str) -> None:
    with Client(address) as client:
        with pytest.raises(InvalidArgumentError) as too_few:
            client.create_job(job_spec(0))
        with pytest.raises(InvalidArgumentError) as painter:
            client.create_job(job_spec(1, painter="picasso"))
    assert too_few.value.field == "spec.items"
    assert too_few.value.reason == "must be in [1, 20], got 0"
    assert "CreateJob" in str(too_few.value) and address in str(too_few.value)
    assert painter.value.field == "spec.render.painter" and "picasso" in painter.value.reason


def test_unknown_mode_or_evaluator_is_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="choose from naive, cor_guided"):
        job_spec(1, mode="poetic")
    with pytest.raises(ValueError, match="alignment"):
        job_spec(1, evaluators=["beauty"])


def test_unknown_job_is_not_found(address: str) -> None:
    with Client(address) as client:
        with pytest.raises(NotFoundError, match="no job 'job-nope'"):
            client.get_job("job-nope")
        with pytest.raises(NotFoundError):
            list(client.watch("job-nope"))


def test_cancel_a_running_job_then_a_finished_one(tmp_path: Path) -> None:
    from tests.client.server import serve_in_thread

    with (
        serve_in_thread(lambda: TestServices(tmp_path, stage_delay_s=0.5)) as address,
        Client(address) as client,
    ):
        job = client.create_job(job_spec(5))
        cancelled = client.cancel_job(job.id)
        assert cancelled.state == P.JOB_STATE_CANCELLED
        assert client.wait(job.id).state == P.JOB_STATE_CANCELLED
        with pytest.raises(FailedPreconditionError, match="already ended"):
            client.cancel_job(job.id)


def test_list_jobs_pages_and_filters(address: str) -> None:
    with Client(address) as client:
        ids = [client.create_job(job_spec(1, name=f"j{i}")).id for i in range(3)]
        for job_id in ids:
            client.wait(job_id)
        listed = [j.id for j in client.list_jobs(page_size=2)]
        succeeded = list(client.list_jobs(states=["succeeded"]))
        running = list(client.list_jobs(states=["running"]))
    assert listed == ids[::-1]
    assert len(succeeded) == 3 and running == []


def test_request_id_makes_create_idempotent(address: str) -> None:
    with Client(address) as client:
        first = client.create_job(job_spec(1), request_id="same")
        second = client.create_job(job_spec(1), request_id="same")
    assert first.id == second.id


def test_run_item_returns_the_finished_item(address: str) -> None:
    with Client(address) as client:
        item = client.run_item(job_spec(1))
    assert item.state == P.ITEM_STATE_SUCCEEDED
    assert item.story.text and item.image.width == 64 and item.image.data[:4] == b"\x89PNG"
    assert 0 <= item.evaluation.alignment.score <= 1 and item.evaluation.alignment.key_points


def test_unreachable_service_is_unavailable() -> None:
    with (
        Client(f"127.0.0.1:{free_port()}", timeout=5) as client,
        pytest.raises(UnavailableError, match="is it running"),
    ):
        client.get_job("x")


def test_deadline_exceeded(address: str) -> None:
    # The item takes three stage delays (60 ms) on the server.
    with Client(address) as client, pytest.raises(DeadlineExceededError, match="RunItem"):
        client.run_item(job_spec(1), timeout=0.01)


async def test_async_client_end_to_end(address: str) -> None:
    async with AsyncClient(address) as client:
        job = await client.create_job(job_spec(2, seed=3))
        progress: JobProgress | None = None
        async for update in client.watch_progress(job.id):
            progress = update
        assert progress is not None and progress.ended and progress.items_succeeded == 2
        final = await client.wait(job.id)
        assert final.state == P.JOB_STATE_SUCCEEDED
        assert [j.id async for j in client.list_jobs()] == [job.id]
        with pytest.raises(FailedPreconditionError):
            await client.cancel_job(job.id)
        with pytest.raises(InvalidArgumentError) as error:
            await client.create_job(job_spec(21))
        assert error.value.field == "spec.items"
        with pytest.raises(NotFoundError):
            async for _ in client.watch("job-missing"):
                pass


async def test_async_watch_reconnects(services: tuple[str, TestServices]) -> None:
    address, fake = services
    async with AsyncClient(address) as client:
        job = await client.create_job(job_spec(2))
        fake.pipeline.drop_watch_after = 3
        events = [e async for e in client.watch(job.id)]
        final = await client.get_job(job.id)
    assert fake.pipeline.drop_watch_after is None
    changes = [e.sequence for e in events if e.HasField("item")]
    assert changes == sorted(set(changes))
    assert latest(events) == {item.index: item for item in final.items}
