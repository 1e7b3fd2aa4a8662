"""Every dashboard query returns data from a real Prometheus that scraped the local stack after a job.

The stack: the four services as processes, vLLM CPU serving SmolLM2-135M (storyteller), vLLM CPU serving
the tiny random VLM (judge), Triton serving the tiny random painter, and Prometheus scraping all of them
every second. Two jobs run through it: one that succeeds and one whose renders are refused (so failures
have reasons). A panel whose queries all come back empty fails the test.

One thing cannot come from the stack itself: no LLM that runs here writes key-point JSON (SmolLM2-135M
cannot), so alignment never runs there and the judge's false-yes rate would stay empty. An evaluation
service with the real judge (the tiny VLM on vLLM) and recorded extractor outputs, scraped by the same
Prometheus, evaluates a set of two items, as tests/evaluation/test_vllm_judge.py does.

Queries of GPU-only series (NVML: nv_gpu_*) are run and must be valid PromQL, but they can have no data on
a machine without a GPU; each of their panels has other series that must.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
import json
import math
from pathlib import Path

import pytest
from storytelling.client import Client, job_spec
from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.service import EvaluationService
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.process import free_port
from storytelling.runtime.testing import running_service
from storytelling.stack import prometheus
from storytelling.stack.local import Engines, LocalStack, StackOptions
from storytelling.stack.wiring import ServiceConfig
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc

from scripts import observability
from tests.engines.vllm import SERVED_MODEL
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine, encoded
from tests.evaluation.test_diversity_sets import DISTINCT
from tests.evaluation.test_service import pool_key_points

pytestmark = pytest.mark.slow

JUDGE = "tiny-vlm-random"
VARIABLES = {"$namespace": ".*", "$evaluator": ".*", "$__rate_interval": "5m"}


def services_for(vllm_server, vllm_vlm, triton_painter) -> dict[str, ServiceConfig]:
    llm = {"vllm": {"kind": "openai", "base_url": vllm_server.base_url, "model": SERVED_MODEL}}
    judge = {"judge": {"kind": "openai", "base_url": vllm_vlm.base_url, "model": JUDGE, "max_retries": 0}}
    story = [
        "--engines",
        json.dumps(llm),
        "--default-engine",
        "vllm",
        "--max-tokens",
        "96",
        "--max-attempts",
        "1",
    ]
    return {
        "story": ServiceConfig(story),
        "render": ServiceConfig(["--triton-url", triton_painter.grpc_url, "--default-painter", "triton"]),
        "evaluation": ServiceConfig(["--judges", json.dumps(judge), "--default-judge", "judge"]),
    }


def engine_metrics(vllm_server, vllm_vlm, triton_painter) -> dict[str, str]:
    return {
        "storyteller": f"127.0.0.1:{vllm_server.port}",
        "judge": f"127.0.0.1:{vllm_vlm.port}",
        "painter": triton_painter.metrics_url.removeprefix("http://").removesuffix("/metrics"),
    }


def run_jobs(address: str) -> list:
    with Client(address, timeout=60) as client:
        good = client.create_job(job_spec(2, seed=7, steps=2))
        refused = client.create_job(job_spec(1, seed=8, steps=1000))  # over the painter's max_steps
        return [client.wait(good.id), client.wait(refused.id)]


@contextlib.asynccontextmanager
async def evaluation_with_the_judge(embedder, vllm_vlm, metrics_port: int) -> AsyncIterator[None]:
    """Alignment with the real VLM judge and recorded key points (real false-yes observations); the
    service keeps serving its metrics until the block ends."""
    # Each item's controls come from the pool's test split, whose stories have key points of their own.
    by_story = {
        DISTINCT[0]: recorded.KEY_POINTS_GOOD,
        DISTINCT[1]: recorded.KEY_POINTS_OTHER,
        **pool_key_points(),
    }
    extractor = RecordedChatEngine([recorded.KEY_POINTS_GOOD], by_story=by_story)
    judge = OpenAIChatEngine(vllm_vlm.base_url, JUDGE)
    core = Evaluation(embedder, None, extractors={"recorded": extractor}, judges={"judge": judge},
                      default_extractor="recorded", default_judge="judge")  # fmt: skip
    settings = ServiceSettings(port=0, metrics_port=metrics_port, ready_poll_s=0.05)
    image = common_pb2.Image(data=encoded("PNG"), format=common_pb2.IMAGE_FORMAT_PNG)
    items = [evaluation_pb2.EvaluationItem(id=f"it-{i}", story=DISTINCT[i], image=image) for i in range(2)]
    request = evaluation_pb2.EvaluateSetRequest(items=items, evaluators=[evaluation_pb2.EVALUATOR_ALIGNMENT])
    try:
        async with running_service(EvaluationService(core), settings) as channel:
            stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
            events = [event async for event in stub.EvaluateSet(request, timeout=600)]
            results = [e.item.alignment for e in events if e.HasField("item")]
            assert [r.status.state for r in results] == [common_pb2.EvaluatorStatus.STATE_OK] * 2
            assert all(r.HasField("false_yes_rate") for r in results)
            yield
    finally:
        await judge.aclose()


def has_data(result: list[dict]) -> bool:
    return any(math.isfinite(float(series["value"][1])) for series in result)


# Starting three engines and four services takes minutes on two busy cores.
@pytest.mark.timeout(1500)
async def test_every_dashboard_panel_has_data(
    vllm_server, vllm_vlm, triton_painter, embedder, tmp_path: Path
):
    stack = LocalStack(StackOptions(data_dir=tmp_path / "runs", ephemeral_ports=True))
    stack.engines = Engines(metrics=engine_metrics(vllm_server, vllm_vlm, triton_painter))  # the fixtures'
    judge_metrics = free_port()
    try:
        endpoints = await asyncio.to_thread(
            stack.start_services, services_for(vllm_server, vllm_vlm, triton_painter)
        )
        targets = {name: f"127.0.0.1:{process.metrics_port}" for name, process in stack.services.items()}
        targets.update(stack.engines.metrics)
        targets["evaluation-with-judge"] = f"127.0.0.1:{judge_metrics}"
        with prometheus.prometheus(targets, interval_s=1) as server:
            good, refused = await asyncio.to_thread(run_jobs, endpoints["orchestrator"])
            assert good.items_succeeded == 2 and refused.items_failed == 1
            async with evaluation_with_the_judge(embedder, vllm_vlm, judge_metrics):
                await asyncio.sleep(3)  # one more scrape of the final counts
                assert all(server.targets_up().values()), server.targets_up()
                empty, gpu_only = await asyncio.to_thread(query_every_panel, server)
            assert not empty, "queries without data:\n" + "\n".join(empty)
            assert all("nv_gpu_" in expr for expr in gpu_only)
    finally:
        await asyncio.to_thread(stack.down)


def query_every_panel(server: prometheus.PrometheusServer) -> tuple[list[str], list[str]]:
    """Runs every query of every panel; returns the queries without data (panels with none are marked) and
    the GPU-only queries without data."""
    empty, gpu_only = [], []
    for dashboard in observability.DASHBOARDS:
        for panel in dashboard.panels:
            found = False
            for query in panel.queries:
                expr = query.expr
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                result = server.query(expr)  # raises on a PromQL error
                if has_data(result):
                    found = True
                elif query.gpu_only:
                    gpu_only.append(expr)
                else:
                    empty.append(f"{dashboard.title} / {panel.title}: {expr}")
            if not found:
                empty.append(f"PANEL WITHOUT DATA: {dashboard.title} / {panel.title}")
    return empty, gpu_only
