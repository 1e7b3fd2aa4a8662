"""Riding out an engine restart: Triton stops for three minutes in the middle of a job and starts again on
its ports. The render service answers UNAVAILABLE meanwhile; the job's items wait for it (the job and
`storytelling status` show "waiting for render"), then all finish: none failed, nothing finished done again.

Real processes: the orchestrator, the render service and Triton serving the tiny random painter; story and
evaluation are the in-process stages behind a gRPC server (they count their calls).
STORYTELLING_TEST_OUTAGE_S shortens the outage for a quick local run (default 180 s, as issue 13 asks).
"""

import asyncio
import os
import sys
import time
from pathlib import Path

import grpc
import pytest

from storytelling.orchestrator.stages import Stages
from storytelling.runtime.testing import running_service, service_process
from storytelling.stack import triton
from storytelling.v1 import pipeline_pb2, pipeline_pb2_grpc
from tests.client.test_cli import storytelling
from tests.engines.triton import PAINTER_MODELS, tiny_parameters

from .conftest import spec
from .stage_servers import LocalStageServices, story_indexes
from .stages import LocalEvaluate, LocalRender, LocalStory

pytestmark = pytest.mark.slow

OUTAGE_S = float(os.environ.get("STORYTELLING_TEST_OUTAGE_S", "180"))
ITEMS, SEED = 8, 17
RENDER = pipeline_pb2.STAGE_RENDER


def image_files(job_dir: Path) -> dict[int, int]:
    """Item index -> modification time (ns) of its image.json, for every item painted so far."""
    return {int(p.parent.name): p.stat().st_mtime_ns for p in job_dir.glob("items/*/image.json")}


async def test_items_wait_out_a_three_minute_triton_restart_and_finish_once(
    tiny_painter: Path, tmp_path: Path
):
    workdir = tmp_path / "triton"
    repository = triton.prepare_repository(
        workdir / "model_repository", tiny_parameters(tiny_painter), models=PAINTER_MODELS
    )
    painter = await asyncio.to_thread(triton.start, repository, PAINTER_MODELS, workdir, ready_timeout=600)
    ports = {
        "http_port": painter.http_port,
        "grpc_port": painter.grpc_port,
        "metrics_port": painter.metrics_port,
        "ready_timeout": 600,
    }
    stages = Stages(LocalStory(), LocalRender(), LocalEvaluate(latency_s=0.05))
    local = LocalStageServices(stages, story_indexes(SEED, ITEMS).__getitem__, serve=("story", "evaluation"))
    env = {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}
    try:
        async with running_service(local) as channel:
            with (
                service_process(
                    "storytelling.render",
                    args=["--triton-url", painter.grpc_url, "--default-painter", "triton"],
                    env=env,
                    ready_timeout=300,
                ) as render,
                service_process(
                    "storytelling.orchestrator",
                    args=[
                        "--data-dir",
                        str(tmp_path / "data"),
                        "--story-address",
                        channel.server.address,
                        "--evaluation-address",
                        channel.server.address,
                        "--render-address",
                        render.address,
                        "--render-concurrency",
                        "1",
                        "--max-wait-s",
                        str(OUTAGE_S + 600),
                        "--max-probe-interval-s",
                        "2",
                    ],
                    env=env,
                ) as orchestrator,
            ):
                async with grpc.aio.insecure_channel(orchestrator.address) as client:
                    stub = pipeline_pb2_grpc.PipelineServiceStub(client)
                    job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec(ITEMS, seed=SEED)))
                    job_dir = Path(job.directory)
                    while len(image_files(job_dir)) < 2:
                        await asyncio.sleep(0.1)
                    await asyncio.to_thread(painter.stop)  # Triton goes away mid-job
                    down_at = time.monotonic()
                    painted_before = image_files(job_dir)

                    # While it is down the job waits for render, and says so.
                    waiting = None
                    while time.monotonic() - down_at < min(60.0, OUTAGE_S):
                        current = await stub.GetJob(
                            pipeline_pb2.GetJobRequest(job_id=job.id, omit_items=True)
                        )
                        render_counts = next(c for c in current.stages if c.stage == RENDER)
                        if render_counts.waiting:
                            waiting = render_counts
                            break
                        await asyncio.sleep(0.5)
                    if waiting is None:
                        current = await stub.GetJob(pipeline_pb2.GetJobRequest(job_id=job.id))
                        states = [
                            (i.index, i.state, i.stage, i.attempts.get("STAGE_RENDER"), i.error)
                            for i in current.items
                        ]
                        pytest.fail(
                            f"the job never showed render waiting: {current.stages} {states}\n{render.logs()[-3000:]}"
                        )
                    assert waiting.wait.service == "render" and "UNAVAILABLE" in waiting.wait.reason
                    status = await asyncio.to_thread(
                        storytelling, "status", job.id, address=orchestrator.address
                    )
                    assert "waiting for render since" in status.stdout, status.stdout + status.stderr
                    assert current.state == pipeline_pb2.JOB_STATE_RUNNING and current.items_failed == 0

                    await asyncio.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
                    assert image_files(job_dir) == painted_before, "something was painted with Triton down"
                    painter = await asyncio.to_thread(
                        triton.start, repository, PAINTER_MODELS, workdir, **ports
                    )

                    events = [e async for e in stub.WatchJob(pipeline_pb2.WatchJobRequest(job_id=job.id))]
                    done = await stub.GetJob(pipeline_pb2.GetJobRequest(job_id=job.id))
    finally:
        await asyncio.to_thread(painter.stop)

    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (done.items_succeeded, done.items_failed) == (ITEMS, 0), [i.error for i in done.items if i.error]
    assert events[-1].finished.items_succeeded == ITEMS
    waited = [i.index for i in done.items if i.attempts["STAGE_RENDER"] > 1]
    assert waited, "no render was tried again: the outage was not noticed"
    # Nothing finished was done again: images painted before the outage untouched, one story and one
    # evaluation call per item.
    assert {index: image_files(job_dir)[index] for index in painted_before} == painted_before
    assert dict(stages.story.sim.calls) == dict.fromkeys(range(ITEMS), 1)
    assert dict(stages.evaluate.sim.calls) == dict.fromkeys(range(ITEMS), 1)
    assert not any(c.waiting or c.HasField("wait") for c in done.stages)
