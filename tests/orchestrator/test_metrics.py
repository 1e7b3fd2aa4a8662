"""The pipeline's Prometheus metrics, read from the registry after real jobs over in-process stages."""

import asyncio

from prometheus_client import CollectorRegistry

from storytelling.orchestrator.metrics import PipelineMetrics
from storytelling.orchestrator.stages import Stages
from storytelling.runtime.errors import InvalidArgument, Unavailable
from storytelling.v1 import pipeline_pb2

from .conftest import finished, spec, until_held
from .stages import LocalEvaluate, LocalRender, LocalStory


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_a_job_counts_items_by_stage_and_outcome_and_leaves_no_queue(make_manager):
    registry = CollectorRegistry()
    faults = {1: [Unavailable("engine restarting")], 2: [InvalidArgument("too long", field="prompt")]}
    stages = Stages(LocalStory(), LocalRender(faults=faults), LocalEvaluate())
    manager = await make_manager(stages, metrics=PipelineMetrics(registry))
    job = await finished(manager, (await manager.create(spec(items=4))).id)
    assert job.state == pipeline_pb2.JOB_STATE_SUCCEEDED and job.items_failed == 1

    assert value(registry, "storytelling_pipeline_items_total", stage="story", outcome="succeeded") == 4
    assert value(registry, "storytelling_pipeline_items_total", stage="render", outcome="succeeded") == 3
    assert value(registry, "storytelling_pipeline_items_total", stage="render", outcome="failed") == 1
    assert value(registry, "storytelling_pipeline_items_total", stage="evaluate", outcome="succeeded") == 3
    assert (
        value(registry, "storytelling_pipeline_item_failures_total", stage="render", reason="InvalidArgument")
        == 1
    )
    assert value(registry, "storytelling_pipeline_attempts_total", stage="render") == 5  # one retry
    assert (
        value(registry, "storytelling_pipeline_stage_seconds_count", stage="render", outcome="succeeded") == 3
    )
    assert value(registry, "storytelling_pipeline_stage_seconds_count", stage="render", outcome="failed") == 1
    assert value(registry, "storytelling_pipeline_jobs_ended_total", state="succeeded") == 1
    for stage in ("story", "render", "evaluate"):
        assert value(registry, "storytelling_pipeline_queue_depth", stage=stage) == 0
    assert value(registry, "storytelling_pipeline_jobs", state="running") == 0


class Gated:
    """Holds every call of a stage until the test opens the gate."""

    def __init__(self, stage) -> None:
        self.stage, self.gate = stage, asyncio.Event()

    def __getattr__(self, name: str):
        method = getattr(self.stage, name)
        if name in ("write", "render", "evaluate"):

            async def gated(*args, **kwargs):
                await self.gate.wait()
                return await method(*args, **kwargs)

            return gated
        return method


async def until(condition, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.01)


async def test_queue_depth_shows_the_backlog_in_front_of_each_stage(make_manager):
    registry = CollectorRegistry()
    story, render, evaluate = Gated(LocalStory()), Gated(LocalRender()), Gated(LocalEvaluate())
    manager = await make_manager(Stages(story, render, evaluate), metrics=PipelineMetrics(registry))
    job = await manager.create(spec(items=10))

    def depth(stage: str) -> float:
        return value(registry, "storytelling_pipeline_queue_depth", stage=stage)

    # Two story calls in flight (the stage's concurrency), eight items waiting for one.
    await until(lambda: depth("story") == 8)
    assert value(registry, "storytelling_pipeline_jobs", state="running") == 1
    # Stories flow; two renders in flight, the eight other stories wait for the render stage.
    story.gate.set()
    await until(lambda: depth("story") == 0 and depth("render") == 8)
    render.gate.set()
    await until(lambda: depth("render") == 0 and depth("evaluate") == 8)
    evaluate.gate.set()
    finished_job = await finished(manager, job.id)
    assert finished_job.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (depth("story"), depth("render"), depth("evaluate")) == (0, 0, 0)


async def test_a_cancelled_job_takes_its_queue_out_of_the_gauges(make_manager):
    registry = CollectorRegistry()
    stages = Stages(LocalStory(latency_s=0.5), LocalRender(), LocalEvaluate())
    manager = await make_manager(stages, metrics=PipelineMetrics(registry))
    job = await manager.create(spec(items=20))
    async with asyncio.timeout(10):
        while value(registry, "storytelling_pipeline_queue_depth", stage="story") == 0:
            await asyncio.sleep(0.01)
    await manager.cancel(job.id)
    assert value(registry, "storytelling_pipeline_queue_depth", stage="story") == 0
    assert value(registry, "storytelling_pipeline_jobs", state="running") == 0
    assert value(registry, "storytelling_pipeline_jobs_ended_total", state="cancelled") == 1


async def test_queue_depth_counts_only_the_items_that_have_not_started_the_stage(make_manager):
    """Two stories written and painting (held), two being written (held), six waiting for a story."""
    registry = CollectorRegistry()
    stages = Stages(LocalStory(hold_after=2), LocalRender(hold_after=0), LocalEvaluate())
    manager = await make_manager(stages, metrics=PipelineMetrics(registry))
    job = await manager.create(spec(items=10))
    await until_held(stages.story.sim, 2, manager, job.id)
    await until_held(stages.render.sim, 2, manager, job.id)

    depths = [value(registry, "storytelling_pipeline_queue_depth", stage=s) for s in ("story", "render")]
    assert depths == [6, 0]
    stages.story.sim.release()
    stages.render.sim.release()
    assert (await finished(manager, job.id)).state == pipeline_pb2.JOB_STATE_SUCCEEDED


async def test_items_whose_artifacts_are_read_back_on_resume_leave_the_queue_of_that_stage(make_manager):
    first_stages = Stages(LocalStory(), LocalRender(hold_after=0), LocalEvaluate())
    first = await make_manager(first_stages)
    job = await first.create(spec(items=2))
    await until_held(first_stages.render.sim, 2, first, job.id)  # both stories written
    await first.stop()

    registry = CollectorRegistry()
    second_stages = Stages(LocalStory(), LocalRender(), LocalEvaluate(hold_after=0))
    second = await make_manager(second_stages, metrics=PipelineMetrics(registry))
    await until_held(second_stages.evaluate.sim, 2, second, job.id)  # both past story and render

    assert not second_stages.story.sim.calls
    for stage in ("story", "render", "evaluate"):
        assert value(registry, "storytelling_pipeline_queue_depth", stage=stage) == 0, stage
    second_stages.evaluate.sim.release()
    assert (await finished(second, job.id)).state == pipeline_pb2.JOB_STATE_SUCCEEDED
