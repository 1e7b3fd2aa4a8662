"""Every service on the shared runtime, as a real process started by the local stack launcher.

Each one turns healthy, lists its methods through reflection, serves metrics, answers a malformed request
with INVALID_ARGUMENT naming the field and stays up, and on SIGTERM finishes an RPC in flight, then exits 0.
"""

from __future__ import annotations

import re
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from storytelling.runtime.testing import service_process
from storytelling.stack.local import LocalStack, StackOptions
from storytelling.v1 import (
    common_pb2,
    evaluation_pb2,
    evaluation_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
    render_pb2,
    render_pb2_grpc,
    story_pb2,
    story_pb2_grpc,
)

pytestmark = pytest.mark.slow

STORIES = [
    "On a snowy Christmas morning a grandmother in a red apron drops a tray of cookies while her grandson laughs.",
    "At 3 AM a nurse in blue scrubs runs down a dim hospital corridor towards a ringing alarm.",
    "A referee in a striped shirt slips in the mud as two football teams stare in surprise.",
]


@dataclass(frozen=True)
class Case:
    service: str
    full_name: str
    methods: set[str]
    bad: Callable[[grpc.Channel], None]
    field: str
    slow_method: str
    slow: Callable[[grpc.Channel], object]
    args: tuple[str, ...] = ()


def _story_bad(channel: grpc.Channel) -> None:
    sampling = common_pb2.SamplingParams(temperature=7.0)
    story_pb2_grpc.StoryServiceStub(channel).WriteStory(
        story_pb2.WriteStoryRequest(options=story_pb2.StoryRequestOptions(sampling=sampling)), timeout=30
    )


def _story_slow(channel: grpc.Channel) -> object:
    options = story_pb2.StoryRequestOptions(sampling=common_pb2.SamplingParams(max_tokens=48))
    return story_pb2_grpc.StoryServiceStub(channel).WriteStory(
        story_pb2.WriteStoryRequest(options=options, seed=1), timeout=300
    )


def _render_bad(channel: grpc.Channel) -> None:
    render_pb2_grpc.RenderServiceStub(channel).Render(
        render_pb2.RenderRequest(prompt="a boy on a stool", width=100, height=64), timeout=30
    )


def _render_slow(channel: grpc.Channel) -> object:
    request = render_pb2.RenderRequest(
        prompt=STORIES[0], painter="embedded", width=128, height=128, steps=100, seed=3
    )
    return render_pb2_grpc.RenderServiceStub(channel).Render(request, timeout=300)


def _evaluation_bad(channel: grpc.Channel) -> None:
    evaluation_pb2_grpc.EvaluationServiceStub(channel).Diversity(
        evaluation_pb2.DiversityRequest(stories=STORIES, options=evaluation_pb2.DiversityOptions(k=-1)),
        timeout=30,
    )


def _evaluation_slow(channel: grpc.Channel) -> object:
    stories = [f"{s} Scene {i}." for i in range(200) for s in STORIES[:1]]
    return evaluation_pb2_grpc.EvaluationServiceStub(channel).Diversity(
        evaluation_pb2.DiversityRequest(stories=stories), timeout=300
    )


def _orchestrator_bad(channel: grpc.Channel) -> None:
    pipeline_pb2_grpc.PipelineServiceStub(channel).CreateJob(
        pipeline_pb2.CreateJobRequest(spec=pipeline_pb2.JobSpec(items=0)), timeout=30
    )


def _orchestrator_slow(channel: grpc.Channel) -> object:
    spec = pipeline_pb2.JobSpec(
        items=1,
        seed=5,
        skip_render=True,
        skip_evaluation=True,
        story=story_pb2.StoryRequestOptions(sampling=common_pb2.SamplingParams(max_tokens=48)),
    )
    return pipeline_pb2_grpc.PipelineServiceStub(channel).RunItem(
        pipeline_pb2.RunItemRequest(spec=spec), timeout=300
    )


CASES = [
    Case(
        "story",
        "storytelling.v1.StoryService",
        {"WriteStory", "WriteStories", "ListPools", "ListModes"},
        _story_bad,
        "options.sampling.temperature",
        "WriteStory",
        _story_slow,
    ),
    Case(
        "render",
        "storytelling.v1.RenderService",
        {"Render", "RenderStream", "ListPainters"},
        _render_bad,
        "width",
        "Render",
        _render_slow,
        ("--embedded-model", "tiny-random"),
    ),
    Case(
        "evaluation",
        "storytelling.v1.EvaluationService",
        {"EvaluateItem", "EvaluateSet", "Diversity"},
        _evaluation_bad,
        "options.k",
        "Diversity",
        _evaluation_slow,
    ),
    Case(
        "orchestrator",
        "storytelling.v1.PipelineService",
        {"CreateJob", "WatchJob", "CancelJob", "RunItem"},
        _orchestrator_bad,
        "spec.items",
        "RunItem",
        _orchestrator_slow,
    ),
]
IDS = [case.service for case in CASES]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    options = StackOptions(data_dir=tmp_path_factory.mktemp("stack"), ephemeral_ports=True)
    with LocalStack(options) as running:
        running.up()
        yield running


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_service_is_healthy_reflects_and_serves_metrics(stack: LocalStack, case: Case):
    proc = stack.services[case.service]
    with grpc.insecure_channel(proc.address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=case.full_name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        database = ProtoReflectionDescriptorDatabase(channel)
        assert case.full_name in set(database.get_services())
        file = database.FindFileContainingSymbol(case.full_name)
        service = next(s for s in file.service if f"{file.package}.{s.name}" == case.full_name)
        assert case.methods <= {m.name for m in service.method}
    body = urllib.request.urlopen(proc.metrics_url, timeout=5).read().decode()
    assert "storytelling_service_ready 1.0" in body
    assert "grpc_server_handling_seconds" in body


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_malformed_request_names_the_field_and_service_stays_up(stack: LocalStack, case: Case):
    proc = stack.services[case.service]
    with grpc.insecure_channel(proc.address) as channel:
        with pytest.raises(grpc.RpcError) as err:
            case.bad(channel)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert err.value.details().startswith(f"{case.field}:"), err.value.details()
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert proc.process.poll() is None


def _in_flight(metrics_url: str, service: str, method: str) -> float:
    body = urllib.request.urlopen(metrics_url, timeout=5).read().decode()
    pattern = rf'grpc_server_in_flight\{{grpc_method="{method}",grpc_service="{re.escape(service)}"\}} (\S+)'
    found = re.search(pattern, body)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_sigterm_finishes_the_rpc_in_flight_then_exits(stack: LocalStack, case: Case, tmp_path: Path):
    args = list(case.args)
    if case.service == "orchestrator":
        args += [
            "--data-dir",
            str(tmp_path),
            "--story-address",
            stack.services["story"].address,
            "--render-address",
            stack.services["render"].address,
            "--evaluation-address",
            stack.services["evaluation"].address,
        ]
    with service_process(
        f"storytelling.{case.service}", args=[*args, "--grace-period-s", "300"], ready_timeout=300
    ) as proc:
        outcome: dict[str, object] = {}
        with grpc.insecure_channel(proc.address) as channel:

            def call() -> None:
                try:
                    outcome["reply"] = case.slow(channel)
                except grpc.RpcError as exc:
                    outcome["error"] = exc

            caller = threading.Thread(target=call)
            caller.start()
            deadline = time.monotonic() + 60
            while _in_flight(proc.metrics_url, case.full_name, case.slow_method) < 1:
                assert time.monotonic() < deadline, "the RPC never showed up in flight"
                assert caller.is_alive(), f"the RPC ended before SIGTERM: {outcome}"
                time.sleep(0.01)
            proc.process.terminate()
            caller.join(300)
        assert "error" not in outcome, outcome.get("error")
        assert outcome["reply"].ByteSize() > 0
        assert proc.process.wait(60) == 0, proc.logs()[-3000:]
