"""Helpers for tests and benchmarks: run a service in-process or as a real subprocess on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Iterator

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.process import ServiceProcess, free_port, lost_port_race, start_service_process
from storytelling.runtime.server import ServiceServer
from storytelling.runtime.service import Service

__all__ = ["ServiceProcess", "free_port", "running_service", "service_process", "wait_serving"]


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
    credentials: grpc.ChannelCredentials | None = None,
) -> AsyncIterator[grpc.aio.Channel]:
    """Serves `service` in this event loop on a free loopback port with the full runtime; yields a channel
    (over TLS with `credentials`, which a service with tls_cert_file needs)."""
    settings = settings or ServiceSettings(port=0, metrics_port=0, ready_poll_s=0.05)
    server = ServiceServer(service, settings.model_copy(update={"port": 0, "host": "127.0.0.1"}))
    await server.start()
    channel = (
        grpc.aio.secure_channel(server.address, credentials)
        if credentials is not None
        else grpc.aio.insecure_channel(server.address)
    )
    try:
        if wait_ready:
            await wait_serving(channel, ready_timeout)
        channel.server = server  # type: ignore[attr-defined]  # lets tests reach metrics and readiness
        yield channel
    finally:
        await channel.close()
        await server.stop(grace=1.0)


@contextlib.contextmanager
def service_process(
    module: str,
    *,
    args: list[str] | tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    ready_timeout: float = 120.0,
    wait_ready: bool = True,
    credentials: grpc.ChannelCredentials | None = None,
) -> Iterator[ServiceProcess]:
    """Runs `python -m module` on free ports, waits for SERVING, and always stops it (no orphans)."""
    for attempt in range(3):  # free ports are free when picked, not always when bound
        proc = start_service_process(module, args=args, env=env, credentials=credentials)
        try:
            if wait_ready:
                proc.wait_serving(ready_timeout)
            break
        except RuntimeError:
            proc.stop()
            if attempt == 2 or not lost_port_race(proc):
                raise
    try:
        yield proc
    finally:
        proc.stop()
