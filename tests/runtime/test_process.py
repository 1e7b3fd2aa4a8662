"""The shared runtime as a real process: ports, reflection, metrics endpoint, SIGTERM, config errors."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import grpc
import pytest
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from storytelling.runtime.process import free_ports, lost_port_race, start_service_process
from storytelling.runtime.testing import service_process
from storytelling.v1 import story_pb2, story_pb2_grpc

PROBE = "tests.runtime.probe"


def test_free_ports_are_distinct_and_bindable_once_returned():
    # Triton is given three ports at once: a repeated one made it refuse to start ("cannot listen to
    # HTTP requests and GRPC requests at the same address and port").
    for _ in range(50):
        ports = free_ports(3)
        assert len(set(ports)) == 3
        for port in ports:
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", port))


def test_reflection_lists_services_and_methods():
    with service_process(PROBE) as proc, grpc.insecure_channel(proc.address) as channel:
        database = ProtoReflectionDescriptorDatabase(channel)
        services = set(database.get_services())
        assert {"storytelling.v1.StoryService", "grpc.health.v1.Health"} <= services
        descriptor = database.FindFileContainingSymbol("storytelling.v1.StoryService")
        methods = {m.name for m in descriptor.service[0].method}
        assert {"WriteStory", "WriteStories", "ListPools", "ListModes", "ListEngines"} <= methods


def test_metrics_endpoint_serves_prometheus_text():
    with service_process(PROBE) as proc, grpc.insecure_channel(proc.address) as channel:
        story_pb2_grpc.StoryServiceStub(channel).ListModes(story_pb2.ListModesRequest())
        body = urllib.request.urlopen(proc.metrics_url, timeout=5).read().decode()
        assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="ListModes"' in body
        assert "grpc_server_in_flight" in body


def wait_in_flight(proc, method: str, timeout: float = 20.0) -> None:
    """Until the server's own gauge shows `method` being served: a signal sent earlier would find no RPC
    in flight, and a test of what happens to one would pass without one."""
    gauge = f'grpc_server_in_flight{{grpc_method="{method}",grpc_service="storytelling.v1.StoryService"}} 1.0'
    deadline = time.monotonic() + timeout
    while gauge not in urllib.request.urlopen(proc.metrics_url, timeout=5).read().decode():
        assert time.monotonic() < deadline, f"{method} never went in flight"
        time.sleep(0.05)


def test_sigterm_lets_the_in_flight_rpc_finish_then_exits_cleanly():
    with service_process(PROBE, args=["--grace-period-s", "10"]) as proc:
        with grpc.insecure_channel(proc.address) as channel:
            stub = story_pb2_grpc.StoryServiceStub(channel)
            result: dict = {}

            def call() -> None:
                try:
                    result["reply"] = stub.WriteStory(story_pb2.WriteStoryRequest(seed=1500), timeout=20)
                except grpc.RpcError as exc:
                    result["error"] = exc

            caller = threading.Thread(target=call)
            caller.start()
            wait_in_flight(proc, "WriteStory")
            proc.process.send_signal(signal.SIGTERM)
            caller.join(20)
            assert "error" not in result, result.get("error")
            assert '"slept_ms": 1500' in result["reply"].story.text
            assert proc.process.wait(20) == 0
        assert "stopped" in proc.logs()


def test_sigterm_grace_period_bounds_shutdown():
    with service_process(PROBE, args=["--grace-period-s", "0.5"]) as proc:
        with grpc.insecure_channel(proc.address) as channel:
            stub = story_pb2_grpc.StoryServiceStub(channel)
            future = stub.WriteStory.future(story_pb2.WriteStoryRequest(seed=30000), timeout=60)
            wait_in_flight(proc, "WriteStory")
            started = time.monotonic()
            proc.process.send_signal(signal.SIGTERM)
            assert proc.process.wait(15) == 0
            assert time.monotonic() - started < 10
            assert future.exception() is not None


def test_invalid_configuration_stops_start_up_naming_env_var_and_flag():
    env_run = subprocess.run(
        [sys.executable, "-m", PROBE],
        env={**__import__("os").environ, "STORYTELLING_PROBE_GRACE_PERIOD_S": "-3"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert env_run.returncode == 2
    assert "grace_period_s (STORYTELLING_PROBE_GRACE_PERIOD_S)" in env_run.stderr
    flag_run = subprocess.run(
        [sys.executable, "-m", PROBE, "--port", "99999", "--log-format", "xml"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert flag_run.returncode == 2
    assert "port (--port)" in flag_run.stderr and "log_format (--log-format)" in flag_run.stderr
    unknown = subprocess.run(
        [sys.executable, "-m", PROBE, "--colour", "red"], capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2 and "unknown flags: --colour red" in unknown.stderr


def test_a_port_taken_before_bind_is_recognised_so_launchers_can_retry():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        proc = start_service_process(PROBE, metrics_port=taken.getsockname()[1])
        try:
            with pytest.raises(RuntimeError, match="exited with 1"):
                proc.wait_serving(60)
            assert lost_port_race(proc)
        finally:
            proc.stop()
