"""The shared runtime as a real process: ports, reflection, metrics endpoint, SIGTERM, config errors."""

from __future__ import annotations

import os
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


LAUNCHER = """
import sys, time
from storytelling.runtime.process import start_service_process
proc = start_service_process("tests.runtime.probe")
proc.wait_serving(60)
print(proc.process.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int, timeout: float) -> bool:
    """Whether process `pid` has exited (a zombie counts: its parent is gone and init reaps it)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                if stat.read().split(")")[-1].split()[0] == "Z":
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(sys.platform != "linux", reason="the parent-death signal is Linux's")
def test_a_service_does_not_outlive_its_launcher_killed_by_sigkill():
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER], stdout=subprocess.PIPE, text=True)
    try:
        service = int(launcher.stdout.readline())
        environ = open(f"/proc/{service}/environ", "rb").read().split(b"\0")
        assert f"STORYTELLING_PARENT_PID={launcher.pid}".encode() in environ  # as started, before it reads it
        assert not _gone(service, 0.5), "the service is up while its launcher lives"
        launcher.kill()
        assert _gone(service, 20), "the service outlived its launcher"
    finally:
        launcher.kill()
        launcher.wait()


def test_a_service_whose_launcher_died_before_it_started_stops_at_once():
    # The launcher's pid in the environment is not the service's parent: it died between the start and
    # the service's request for the signal, so no signal would ever come.
    env = {**os.environ, "STORYTELLING_PARENT_PID": "1"}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "tests.runtime.probe"], env=env, timeout=60)
    assert result.returncode == -signal.SIGTERM
    assert time.monotonic() - started < 30
