"""Crash and resume: kill -9 the orchestrator process in the middle of a job, start it again, and check
that the job finishes with every item exactly once and nothing finished is done again."""

import asyncio
import contextlib
import os
import sys
from collections import Counter
from pathlib import Path

import grpc

from storytelling.api.layout import write_message
from storytelling.orchestrator.clients import Connection, EvaluationClient, RenderClient, StoryClient
from storytelling.orchestrator.retry import RetryPolicy
from storytelling.orchestrator.stages import Stages
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.errors import InvalidArgument
from storytelling.runtime.process import ServiceProcess, start_service_process
from storytelling.runtime.server import ServiceServer
from storytelling.runtime.testing import free_port, running_service
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, pipeline_pb2_grpc, render_pb2

from .conftest import JOB_END_S, ended_events, finished, local_stages, policy, spec
from .stage_servers import LocalStageServices, story_indexes
from .stages import LocalEvaluate, LocalRender, LocalStory, RecordingEvaluate, item_index

ITEMS, SEED = 8, 21
RUNNING, FAILED = pipeline_pb2.ITEM_STATE_RUNNING, pipeline_pb2.ITEM_STATE_FAILED
STORY, RENDER, EVALUATE = pipeline_pb2.STAGE_STORY, pipeline_pb2.STAGE_RENDER, pipeline_pb2.STAGE_EVALUATE
ARTIFACTS = {"story": "story.json", "render": "image.json", "evaluate": "evaluation.json"}


def artifacts(job_dir: Path) -> dict[tuple[str, int], int]:
    """(stage, item index) -> modification time in ns, for every stage artifact on disk."""
    return {
        (stage, int(path.parent.name)): path.stat().st_mtime_ns
        for stage, name in ARTIFACTS.items()
        for path in job_dir.glob(f"items/*/{name}")
    }


def calls(stages: Stages) -> dict[str, Counter[int]]:
    return {
        "story": Counter(stages.story.sim.calls),
        "render": Counter(stages.render.sim.calls),
        "evaluate": Counter(stages.evaluate.sim.calls),
    }


async def orchestrator(data_dir: Path, stage_address: str) -> ServiceProcess:
    args = ["--data-dir", str(data_dir), "--render-concurrency", "1", "--evaluation-concurrency", "1"]
    args += ["--initial-backoff-s", "0.05"]
    for service in ("story", "render", "evaluation"):
        args += [f"--{service}-address", stage_address]
    process = start_service_process(
        "storytelling.orchestrator", args=args, env={"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    )
    await asyncio.to_thread(process.wait_serving, 60)
    return process


def by_stage(done: dict[tuple[str, int], int]) -> dict[str, set[int]]:
    return {stage: {index for name, index in done if name == stage} for stage in ARTIFACTS}


async def test_kill_9_mid_job_then_restart_finishes_every_item_once_and_redoes_nothing(tmp_path: Path):
    """Killed with items at every point of the pipeline: 2 evaluated, 3 rendered but not evaluated, a
    render in flight, and 2 written but not rendered. Held calls (evaluations after the first 2, renders
    after the first 5) stop the job exactly there, whatever order the concurrent workers take."""
    stages = Stages(LocalStory(), LocalRender(hold_after=5), LocalEvaluate(hold_after=2))

    def mid_job() -> bool:
        done = by_stage(artifacts(job_dir))
        return [len(done[stage]) for stage in ARTIFACTS] == [ITEMS, 5, 2] and stages.render.sim.holding == 1

    async with running_service(LocalStageServices(stages, story_indexes(SEED, ITEMS).__getitem__)) as channel:
        stage_address = channel.server.address

        first = await orchestrator(tmp_path, stage_address)
        seen_before: list[pipeline_pb2.JobEvent] = []
        try:
            async with grpc.aio.insecure_channel(first.address) as client:
                stub = pipeline_pb2_grpc.PipelineServiceStub(client)
                job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(ITEMS, seed=SEED)))
                job_dir = Path(job.directory)
                # A watcher follows the first process until it dies.
                watch = stub.WatchJob(pipeline_pb2.WatchJobRequest(job_id=job.id))

                async def follow() -> None:
                    with contextlib.suppress(grpc.aio.AioRpcError):
                        async for event in watch:
                            seen_before.append(event)

                following = asyncio.create_task(follow())
                async with asyncio.timeout(60):
                    while not mid_job():
                        await asyncio.sleep(0.02)
                first.process.kill()  # SIGKILL: no shutdown code runs
                assert first.process.wait() == -9
                await asyncio.wait_for(following, 10)
        finally:
            first.stop()
        stages.render.sim.release()
        stages.evaluate.sim.release()
        await asyncio.sleep(0.3)  # calls in flight at the kill reach the stage services and end
        before_kill, done_at_kill = calls(stages), artifacts(job_dir)
        at_kill = by_stage(done_at_kill)
        rendered_only = at_kill["render"] - at_kill["evaluate"]
        assert at_kill["evaluate"] < at_kill["render"] < at_kill["story"] and len(rendered_only) == 3

        second = await orchestrator(tmp_path, stage_address)
        try:
            async with grpc.aio.insecure_channel(second.address) as client:
                stub = pipeline_pb2_grpc.PipelineServiceStub(client)
                # The watcher resumes where it stopped; another one watches from the start.
                last_seen = max(e.sequence for e in seen_before)
                resume = pipeline_pb2.WatchJobRequest(job_id=job.id, after_sequence=last_seen)
                request = pipeline_pb2.WatchJobRequest(job_id=job.id)
                resumed, events = await asyncio.gather(
                    _collect(stub.WatchJob(resume)), _collect(stub.WatchJob(request))
                )
                done = await stub.GetJob(pipeline_pb2.GetJobRequest(job_id=job.id))
        finally:
            second.stop()

    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert done.items_succeeded == ITEMS and [i.index for i in done.items] == list(range(ITEMS))
    completions = Counter(
        e.item.index
        for e in events
        if e.HasField("item") and e.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED
    )
    assert completions == Counter(range(ITEMS)), "every item completes exactly once"
    sequences = [e.sequence for e in events if e.HasField("item")]
    assert sequences == sorted(set(sequences)), "one numbering across both processes"
    # The watcher that lived through the kill saw every completion exactly once over both processes:
    # nothing it saw before the kill was lost (re-done) or shown again after it.
    across = Counter(
        e.item.index
        for e in seen_before + resumed
        if e.HasField("item") and e.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED
    )
    assert across == Counter(range(ITEMS)), f"completions seen across the kill: {across}"
    repeated = [e for e in resumed if e.HasField("item") and e.sequence <= last_seen]
    assert not repeated, "the resumed watch repeated changes it had seen"
    assert resumed[-1].HasField("finished")

    after = calls(stages)
    for stage, index in done_at_kill:
        assert after[stage][index] == before_kill[stage][index], f"{stage} of item {index} was done again"
    assert all(after["render"][i] == 1 for i in rendered_only), "rendered before the kill, rendered again"
    for stage in ARTIFACTS:
        redone = after[stage] - before_kill[stage]
        assert all(count == 1 for count in redone.values()), f"{stage}: more than one call per item: {redone}"
        assert set(redone) == {i for i in range(ITEMS) if (stage, i) not in done_at_kill}
    finished_files = artifacts(job_dir)
    assert len(finished_files) == 3 * ITEMS
    assert {key: finished_files[key] for key in done_at_kill} == done_at_kill, (
        "a finished artifact was rewritten"
    )
    assert Path(done.gallery_path).is_file()


async def _collect(call) -> list[pipeline_pb2.JobEvent]:
    return [event async for event in call]


async def test_a_stopped_manager_resumes_its_jobs_in_a_new_one(make_manager):
    """The same without a process boundary: stop (as at SIGTERM) leaves the job to the next start."""
    first_stages = local_stages(render=0.05)
    first = await make_manager(first_stages, max_items=100)
    job = await first.create(spec(6))
    async for event in first.watch(job.id):
        if event.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
            break
    await first.stop()
    stopped = await first.get(job.id)
    assert stopped.state == pipeline_pb2.JOB_STATE_RUNNING
    written = {i.index for i in stopped.items if i.HasField("story")}
    painted = {i.index for i in stopped.items if i.HasField("image")}

    second_stages = local_stages()
    second = await make_manager(second_stages)
    done = await finished(second, job.id)
    assert done.items_succeeded == 6
    assert not set(second_stages.story.sim.calls) & written, "stories written before the stop were rewritten"
    assert painted and not set(second_stages.render.sim.calls) & painted, "images painted before were redone"
    assert (
        done.items[0].story.text
        == (await finished(second, (await second.create(spec(6))).id)).items[0].story.text
    )


async def test_a_stage_service_that_crashes_and_comes_back_costs_retries_not_items(make_manager):
    """The render service dies mid-job (connections dropped, no grace) and restarts on its port. Renders
    after the first are held, so the service dies with a render in flight, however loaded the machine."""
    stages = Stages(LocalStory(), LocalRender(hold_after=1), LocalEvaluate())
    services = LocalStageServices(stages, story_indexes(SEED, ITEMS).__getitem__)
    settings = ServiceSettings(port=free_port(), metrics_port=0, ready_poll_s=0.05)
    retry = RetryPolicy(max_attempts=20, initial_backoff_s=0.05, max_backoff_s=0.2)
    connection = Connection(f"127.0.0.1:{settings.port}")
    manager = await make_manager(
        Stages(StoryClient(connection), RenderClient(connection), EvaluationClient(connection)),
        policy(retry=retry),
    )

    server = ServiceServer(services, settings)
    await server.start()
    job = await manager.create(spec(ITEMS, seed=SEED))
    async for event in manager.watch(job.id):
        if event.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
            break
    await stages.render.sim.until_holding(1)
    await server.stop(grace=0)
    server = ServiceServer(services, settings)
    await server.start()
    stages.render.sim.release()
    try:
        done = await finished(manager, job.id)
    finally:
        await server.stop(grace=0)

    assert done.items_succeeded == ITEMS
    assert any(item.attempts["STAGE_RENDER"] > 1 for item in done.items), "the outage was not noticed"
    # A story whose call was in flight when the service died is written again, as a counted retry; no
    # story that reached the orchestrator is.
    for stage, sim in (("STAGE_STORY", stages.story.sim), ("STAGE_RENDER", stages.render.sim)):
        assert all(sim.calls[item.index] <= item.attempts[stage] for item in done.items), stage


async def test_a_resumed_job_reuses_every_artifact_on_disk_and_moves_no_item_back(make_manager):
    """Stopped with every story written (item 4's refused), every image painted (as JPEG) and every
    evaluation held: two items inside their evaluation call, two waiting for one. An evaluation written
    just before the stop was recorded (a crash between the artifact and the store's commit) is on disk
    for one of the two. The next start calls nothing that has its artifact on disk, evaluates the others
    from the images on disk, and counts every item once, the failed one included."""
    first_stages = Stages(
        LocalStory(faults={4: [InvalidArgument("too long", field="prompt")]}),
        LocalRender(),
        LocalEvaluate(hold_after=0),
    )
    first = await make_manager(first_stages)
    jpeg = render_pb2.RenderRequest(format=common_pb2.IMAGE_FORMAT_JPEG)
    job = await first.create(spec(5, render=jpeg))
    latest: dict[int, pipeline_pb2.Item] = {}
    async with asyncio.timeout(JOB_END_S):
        async for event in first.watch(job.id):
            if event.HasField("item"):
                latest[event.item.index] = event.item
            places = sorted((item.state, item.stage, item.HasField("image")) for item in latest.values())
            if places == [
                *[(RUNNING, RENDER, True)] * 2,
                *[(RUNNING, EVALUATE, True)] * 2,
                (FAILED, STORY, False),
            ]:
                last_seen = event.sequence
                break
        else:
            raise AssertionError("the job ended before it reached the point of the stop")
    await first.stop()
    evaluating = sorted(index for index, item in latest.items() if item.stage == EVALUATE)
    job_dir = Path(job.directory)
    before_the_crash = evaluation_pb2.ItemEvaluation(item_id=latest[evaluating[0]].story.id)
    before_the_crash.complexity.score = 0.25
    write_message(job_dir / f"items/{evaluating[0]:05d}/evaluation.json", before_the_crash)

    second_stages = Stages(LocalStory(), LocalRender(), RecordingEvaluate())
    second = await make_manager(second_stages)
    resumed = await ended_events(second, job.id, after=last_seen)
    done = await second.get(job.id)

    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (done.items_succeeded, done.items_failed) == (4, 1)
    assert [(s.stage, s.done, s.failed) for s in done.stages] == [
        (STORY, 4, 1),
        (RENDER, 4, 0),
        (EVALUATE, 4, 0),
    ]
    assert not second_stages.story.sim.calls and not second_stages.render.sim.calls
    assert sorted(second_stages.evaluate.sim.calls.elements()) == [i for i in range(4) if i != evaluating[0]]
    for request in second_stages.evaluate.requests:
        index = item_index(request.item.id)
        assert request.item.image.format == common_pb2.IMAGE_FORMAT_JPEG
        assert request.item.image.data == (job_dir / f"items/{index:05d}/image.jpg").read_bytes()
    assert done.items[evaluating[0]].evaluation == before_the_crash
    for item in done.items[:4]:
        assert item.artifacts.image_path == f"items/{item.index:05d}/image.jpg"
        assert item.image.format == common_pb2.IMAGE_FORMAT_JPEG and not item.image.data
    moved = {(e.item.index, e.item.stage) for e in resumed if e.HasField("item")}
    assert {stage for index, stage in moved if index in evaluating} == {EVALUATE}, "moved back a stage"
    assert STORY not in {stage for _, stage in moved}, "a story read back was recorded again"
