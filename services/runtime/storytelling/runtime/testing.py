"""Helpers for tests and benchmarks: run a service in-process or as a real subprocess on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.server import ServiceServer
from storytelling.runtime.service import Service


def free_port() -> int:
    """A TCP port free on loopback right now (the OS may hand it out again later; bind soon)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def wait_serving(channel: grpc.aio.Channel, timeout: float, service: str = "") -> None:
    """Polls grpc.health.v1 until SERVING; raises TimeoutError with the last status otherwise."""
    stub = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    status = "no answer"
    while time.monotonic() < deadline:
        try:
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=1)
            if reply.status == health_pb2.HealthCheckResponse.SERVING:
                return
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
        except grpc.aio.AioRpcError as exc:
            status = exc.code().name
        await asyncio.sleep(0.05)
    raise TimeoutError(f"not SERVING after {timeout:.0f}s (last status: {status})")


@contextlib.asynccontextmanager
async def running_service(
    service: Service,
    settings: ServiceSettings | None = None,
    *,
    wait_ready: bool = True,
    ready_timeout: float = 60.0,
) -> AsyncIterator[grpc.aio.Channel]:
    """Serves `service` in this event loop on a free loopback port with the full runtime; yields a channel."""
    settings = settings or ServiceSettings(port=0, metrics_port=0, ready_poll_s=0.05)
    server = ServiceServer(service, settings.model_copy(update={"port": 0, "host": "127.0.0.1"}))
    await server.start()
    channel = grpc.aio.insecure_channel(server.address)
    try:
        if wait_ready:
            await wait_serving(channel, ready_timeout)
        channel.server = server  # type: ignore[attr-defined]  # lets tests reach metrics and readiness
        yield channel
    finally:
        await channel.close()
        await server.stop(grace=1.0)


@dataclass
class ServiceProcess:
    """A service running as `python -m MODULE` in its own process group."""

    module: str
    process: subprocess.Popen
    port: int
    metrics_port: int
    log_path: Path
    _log_file: object = field(repr=False, default=None)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        status = "no answer"
        with grpc.insecure_channel(self.address) as channel:
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
        raise TimeoutError(f"{self.module} not SERVING after {timeout:.0f}s ({status}):\n{self.logs()[-4000:]}")

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
) -> ServiceProcess:
    port = port or free_port()
    metrics_port = metrics_port or free_port()
    log_file = tempfile.NamedTemporaryFile("wb", prefix=f"{module}-", suffix=".log", delete=False)
    command = [
        sys.executable, "-m", module,
        "--host", "127.0.0.1", "--port", str(port), "--metrics-port", str(metrics_port),
        "--log-format", "text", *args,
    ]
    process = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return ServiceProcess(module, process, port, metrics_port, Path(log_file.name), log_file)


@contextlib.contextmanager
def service_process(
    module: str,
    *,
    args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    wait_ready: bool = True,
) -> Iterator[ServiceProcess]:
    """Runs `python -m module` on free ports, waits for SERVING, and always stops it (no orphans)."""
    proc = start_service_process(module, args=args, env=env)
    try:
        if wait_ready:
            proc.wait_serving(ready_timeout)
        yield proc
    finally:
        proc.stop()
