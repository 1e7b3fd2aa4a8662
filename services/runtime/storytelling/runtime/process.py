"""Service processes: `python -m <service>` on loopback ports, in its own process group.

Used by the local stack, the tests and the benchmarks, so all three start services the same way.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import grpc

# The pid of the process that started a service, which the service should not outlive (`die_with_parent`).
PARENT_PID_ENV = "STORYTELLING_PARENT_PID"


def free_port() -> int:
    """A TCP port free on loopback right now (the OS may hand it out again later; bind soon)."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports free on loopback right now.

    The sockets stay bound until all are picked: one at a time, the OS may hand the same port out twice,
    and a server given it for two listeners refuses to start."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


@dataclass
class ServiceProcess:
    """A service running as `python -m MODULE` in its own process group."""

    module: str
    process: subprocess.Popen
    port: int
    metrics_port: int
    log_path: Path
    _log_file: object = field(repr=False, default=None)
    # How to reach it when it serves TLS (health checks included); None: plaintext.
    credentials: grpc.ChannelCredentials | None = field(repr=False, default=None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float) -> None:
        import grpc  # only here: launchers of non-gRPC engines (Triton, vLLM) import this module too
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        deadline = time.monotonic() + timeout
        status = "no answer"
        channel = (
            grpc.secure_channel(self.address, self.credentials)
            if self.credentials is not None
            else grpc.insecure_channel(self.address)
        )
        with channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"{self.module} exited with {self.process.returncode}:\n{self.logs()[-4000:]}"
                    )
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=1)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return
                    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
                except grpc.RpcError as exc:
                    status = exc.code().name
                time.sleep(0.1)
        raise TimeoutError(
            f"{self.module} not SERVING after {timeout:.0f}s ({status}):\n{self.logs()[-4000:]}"
        )

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Sends `sig`, waits for exit; kills the whole process group if it does not exit in time."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # children left behind, if any
        if self._log_file is not None:
            self._log_file.close()
        return self.process.returncode


def start_service_process(
    module: str,
    *,
    args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    port: int | None = None,
    metrics_port: int | None = None,
    log_path: Path | None = None,
    log_format: str = "text",
    credentials: grpc.ChannelCredentials | None = None,
) -> ServiceProcess:
    """Starts `python -m module` on loopback; output goes to `log_path` (default: a temporary file)."""
    spare = iter(free_ports(2))
    port = port or next(spare)
    metrics_port = metrics_port or next(spare)
    if log_path is None:
        log_file = tempfile.NamedTemporaryFile("wb", prefix=f"{module}-", suffix=".log", delete=False)
        log_path = Path(log_file.name)
    else:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        log_file = log_path.open("ab")
    command = [
        sys.executable,
        "-m",
        module,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--metrics-port",
        str(metrics_port),
        "--log-format",
        log_format,
        *args,
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {}), PARENT_PID_ENV: str(os.getpid())},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ServiceProcess(module, process, port, metrics_port, log_path, log_file, credentials)


PORT_CLASH = ("Address already in use", "cannot bind gRPC port")


def lost_port_race(proc: ServiceProcess) -> bool:
    """Whether `proc` exited because another process bound its port between free_port() and its bind."""
    return proc.process.poll() is not None and any(marker in proc.logs() for marker in PORT_CLASH)


def die_with_parent() -> None:
    """Run first by every service (`server.main`): where the launcher asked for it (`PARENT_PID_ENV`), the
    kernel sends this process SIGTERM when the launcher dies, even by SIGKILL (Linux's parent-death signal).

    The service sets it on itself rather than through Popen's preexec_fn: only with a preexec_fn does
    Popen run Python's before-fork hooks, among them gRPC's, which wait for gRPC's threads while the
    forking thread holds the GIL (grpc/grpc#37259). A test's launcher hung there for 25 minutes, its
    pytest timeout unable to fire; without a preexec_fn, Popen uses vfork and execs at once."""
    launcher = os.environ.pop(PARENT_PID_ENV, "")  # engines this service starts do not inherit it
    if not launcher or sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() != int(launcher):  # the launcher died before the request took effect: no signal
        os.kill(os.getpid(), signal.SIGTERM)
