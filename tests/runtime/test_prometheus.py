"""A real Prometheus scrapes a service on the shared runtime, and the queries we document work."""

from __future__ import annotations

import time

import grpc
import pytest

from storytelling.runtime.testing import service_process
from storytelling.stack.prometheus import prometheus
from storytelling.v1 import story_pb2, story_pb2_grpc

pytestmark = pytest.mark.slow

QUERIES = {
    "rate": 'sum by (grpc_method) (rate(grpc_server_handled_total{grpc_code="OK"}[1m]))',
    "errors": 'sum by (grpc_code) (grpc_server_handled_total{grpc_code!="OK"})',
    "p99": "histogram_quantile(0.99, sum by (le) (rate(grpc_server_handling_seconds_bucket[1m])))",
    "ready": "storytelling_service_ready",
}


def test_prometheus_scrapes_runtime_metrics():
    with service_process("tests.runtime.probe") as proc, grpc.insecure_channel(proc.address) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        with prometheus({"probe": f"127.0.0.1:{proc.metrics_port}"}, interval_s=1) as prom:
            deadline = time.monotonic() + 30
            results: dict[str, list] = {}
            while time.monotonic() < deadline:
                for _ in range(20):
                    stub.ListModes(story_pb2.ListModesRequest())
                with pytest.raises(grpc.RpcError):
                    stub.WriteStory(
                        story_pb2.WriteStoryRequest(options=story_pb2.StoryRequestOptions(num_exemplars=-1))
                    )
                results = {name: prom.query(q) for name, q in QUERIES.items()}
                if all(results.values()):
                    break
                time.sleep(1)
            assert prom.targets_up() == {"probe": True}
            assert {r["metric"]["grpc_method"] for r in results["rate"]} >= {"ListModes"}
            assert {r["metric"]["grpc_code"] for r in results["errors"]} == {"INVALID_ARGUMENT"}
            assert float(results["ready"][0]["value"][1]) == 1.0
            assert results["p99"], "latency histogram produced no quantile"
