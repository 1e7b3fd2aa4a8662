"""The gRPC stage clients against real servers (the in-process stages behind the shared runtime)."""

from collections.abc import AsyncIterator

import pytest

from storytelling.orchestrator.clients import Connection, EvaluationClient, RenderClient, StoryClient
from storytelling.orchestrator.gate import WaitPolicy
from storytelling.orchestrator.stages import Stages
from storytelling.runtime.errors import InvalidArgument, Unavailable
from storytelling.runtime.testing import free_port, running_service
from storytelling.v1 import pipeline_pb2

from .conftest import finished, policy, spec
from .stage_servers import LocalStageServices, story_indexes
from .stages import LocalEvaluate, LocalRender, LocalStory

SEED, ITEMS = 3, 4


def grpc_stages(address: str) -> Stages:
    return Stages(
        StoryClient(Connection(address)),
        RenderClient(Connection(address)),
        EvaluationClient(Connection(address)),
    )


@pytest.fixture
async def served() -> AsyncIterator[tuple[Stages, str]]:
    """Local stages (story 1 fails InvalidArgument, render 2 is Unavailable twice) and their address."""
    stages = Stages(
        LocalStory(faults={1: [InvalidArgument("too long", field="options.theme")]}),
        LocalRender(faults={2: [Unavailable("painter restarting")] * 2}),
        LocalEvaluate(),
    )
    async with running_service(LocalStageServices(stages, story_indexes(SEED, ITEMS).__getitem__)) as channel:
        yield stages, channel.server.address


async def test_a_job_runs_over_grpc_with_retries_deadlines_and_progress(served, make_manager):
    local, address = served
    manager = await make_manager(grpc_stages(address), policy(deadline_s=5.0))
    job = await manager.create(spec(ITEMS, seed=SEED))
    events = [event async for event in manager.watch(job.id)]
    done = await manager.get(job.id)

    assert [i.state for i in done.items] == [
        pipeline_pb2.ITEM_STATE_SUCCEEDED,
        pipeline_pb2.ITEM_STATE_FAILED,
        pipeline_pb2.ITEM_STATE_SUCCEEDED,
        pipeline_pb2.ITEM_STATE_SUCCEEDED,
    ]
    assert done.items[1].error == (
        "story failed after 1 attempt(s): InvalidArgument: "
        "story answered INVALID_ARGUMENT: options.theme: too long"
    )
    assert done.items[2].attempts["STAGE_RENDER"] == 3 and local.render.sim.calls[2] == 3
    last_step = {
        e.progress.item_index: (e.progress.step, e.progress.total) for e in events if e.HasField("progress")
    }
    assert last_step == {0: (4, 4), 2: (4, 4), 3: (4, 4)}, "RenderStream progress reaches watchers"
    assert done.summary.diversity.embedder == "word-sets"
    # The stage deadline travels with each call and is what the service sees as its own deadline.
    assert all(d is not None and 4.0 < d < 5.1 for d in local.story.sim.deadlines)


async def test_unknown_choices_are_refused_by_asking_the_services(served, make_manager):
    _, address = served
    manager = await make_manager(grpc_stages(address))
    with pytest.raises(
        InvalidArgument, match="spec.render.painter: unknown painter 'picasso'; known: sketch"
    ):
        await manager.create(spec(1, render={"painter": "picasso"}))
    with pytest.raises(InvalidArgument, match="spec.story.engine: unknown engine 'gpt-9'; known: template"):
        await manager.create(spec(1, story={"engine": "gpt-9"}))


async def test_a_service_that_stays_down_fails_items_naming_the_stage_after_waiting(make_manager):
    wait = WaitPolicy(max_wait_s=0.5, first_probe_s=0.05, max_probe_s=0.1)
    manager = await make_manager(grpc_stages(f"127.0.0.1:{free_port()}"), wait=wait)
    done = await finished(manager, (await manager.create(spec(2))).id)
    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED and done.items_failed == 2
    assert done.items[0].error.startswith("story failed after ")
    assert (
        "Unavailable: waited 0.5 s for story to come back: story answered UNAVAILABLE" in done.items[0].error
    )
