"""PipelineService over gRPC on the shared runtime: status codes, streaming, and load."""

import asyncio
from pathlib import Path

import grpc
import pytest

from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.service import PipelineService
from storytelling.orchestrator.store import Store
from storytelling.runtime.testing import running_service
from storytelling.v1 import pipeline_pb2, pipeline_pb2_grpc

from .conftest import local_stages, policy, spec


@pytest.fixture
async def address(tmp_path: Path):
    store = Store(tmp_path / "orchestrator.sqlite3")
    jobs = JobManager(
        store,
        local_stages(story=0.002, render=0.005),
        data_dir=tmp_path,
        policy=policy(),
        max_items=10,
        max_running_jobs=50,
    )
    async with running_service(PipelineService(jobs, store, connections=[])) as channel:
        yield channel.server.address


@pytest.fixture
async def stub(address: str):
    async with grpc.aio.insecure_channel(address) as channel:
        yield pipeline_pb2_grpc.PipelineServiceStub(channel)


async def watch(stub, job_id: str, after: int = 0) -> list[pipeline_pb2.JobEvent]:
    request = pipeline_pb2.WatchJobRequest(job_id=job_id, after_sequence=after)
    return [event async for event in stub.WatchJob(request)]


async def expect(code: grpc.StatusCode, details: str, call) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    assert (raised.value.code(), raised.value.details()) == (code, details)


async def test_create_watch_get_list_and_cancel(stub):
    job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(3), request_id="k1"))
    assert (await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(3), request_id="k1"))).id == job.id
    events = await watch(stub, job.id)
    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    resumed = await watch(stub, job.id, after=4)
    assert {e.item.index: e.item for e in resumed if e.HasField("item")} == {
        e.item.index: e.item for e in events if e.HasField("item") and e.sequence > 4
    }

    got = await stub.GetJob(pipeline_pb2.GetJobRequest(job_id=job.id))
    assert got.items_succeeded == 3 and len(got.items) == 3 and got.summary.items == 3
    listed = await stub.ListJobs(pipeline_pb2.ListJobsRequest(page_size=1))
    assert [j.id for j in listed.jobs] == [job.id] and not listed.next_page_token
    await expect(
        grpc.StatusCode.FAILED_PRECONDITION,
        f"job_id: job {job.id} has already ended (JOB_STATE_SUCCEEDED)",
        stub.CancelJob(pipeline_pb2.CancelJobRequest(job_id=job.id)),
    )


async def test_bad_input_gets_a_clear_status(stub):
    create = stub.CreateJob
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "spec.items: must be in [1, 10], got 0",
        create(pipeline_pb2.CreateJobRequest(spec=spec(0))),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "spec.items: must be in [1, 10], got 11",
        create(pipeline_pb2.CreateJobRequest(spec=spec(11))),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "spec.story.mode: unknown value 5; "
        "known: STORY_MODE_UNSPECIFIED, STORY_MODE_NAIVE, STORY_MODE_COR_GUIDED, STORY_MODE_SHORT",
        create(pipeline_pb2.CreateJobRequest(spec=spec(1, story={"mode": 5}))),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "spec.render.painter: unknown painter 'x'",
        create(pipeline_pb2.CreateJobRequest(spec=spec(1, render={"painter": "x"}))),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        "job_id: no job 'nope'",
        stub.GetJob(pipeline_pb2.GetJobRequest(job_id="nope")),
    )
    await expect(
        grpc.StatusCode.NOT_FOUND,
        "job_id: no job 'nope'",
        stub.CancelJob(pipeline_pb2.CancelJobRequest(job_id="nope")),
    )
    await expect(grpc.StatusCode.NOT_FOUND, "job_id: no job 'nope'", watch(stub, "nope"))
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "job_id: not a job id: 1-64 letters, digits, '-' or '_' (got 5 characters)",
        stub.GetJob(pipeline_pb2.GetJobRequest(job_id="../up")),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "after_sequence: must be >= 0, got -1",
        watch(stub, "nope", after=-1),
    )
    await expect(
        grpc.StatusCode.INVALID_ARGUMENT,
        "page_token: not a token from a previous page of this listing",
        stub.ListJobs(pipeline_pb2.ListJobsRequest(page_token="x")),
    )


async def test_run_item_returns_the_item_with_its_image(stub):
    item = await stub.RunItem(pipeline_pb2.RunItemRequest(spec=spec(1)))
    assert item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED and item.image.data[:4] == b"\x89PNG"
    assert item.story.text and item.evaluation.alignment.key_points


async def test_cancel_over_grpc(stub):
    job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(10, render={"steps": 0})))
    cancelled = await stub.CancelJob(pipeline_pb2.CancelJobRequest(job_id=job.id))
    assert cancelled.state == pipeline_pb2.JOB_STATE_CANCELLED
    assert (await watch(stub, job.id))[-1].finished.state == pipeline_pb2.JOB_STATE_CANCELLED


async def test_fifty_concurrent_clients_create_and_watch_without_errors_or_lost_events(address):
    async def client(number: int) -> None:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
            job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(2, seed=number)))
            live, resumed = await asyncio.gather(watch(stub, job.id), watch(stub, job.id, after=2))
            sequences = [e.sequence for e in live if e.HasField("item")]
            assert sequences == sorted(set(sequences))
            final = {e.item.index: e.item for e in live if e.HasField("item")}
            assert {e.item.index: e.item for e in resumed if e.HasField("item")} == final
            assert live[-1].finished.items_succeeded == 2 == resumed[-1].finished.items_succeeded
            replay = await watch(stub, job.id)
            assert {e.item.index: e.item for e in replay if e.HasField("item")} == final, (
                "a replay differs from what the live watcher saw"
            )

    await asyncio.gather(*(client(n) for n in range(50)))
