"""Runs a Service: asyncio gRPC server, health, reflection, metrics, logs and graceful shutdown."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection
from prometheus_client import CollectorRegistry

from storytelling.runtime import logs
from storytelling.runtime.config import ConfigError, ServiceSettings
from storytelling.runtime.health import Readiness
from storytelling.runtime.handlers import HandlerWrapper, WrappingServer
from storytelling.runtime.metrics import RpcMetrics, serve_http
from storytelling.runtime.service import Service

log = logging.getLogger("storytelling.server")

S = TypeVar("S", bound=ServiceSettings)


class ServiceServer:
    """A Service bound to a gRPC port, with everything every service gets for free."""

    def __init__(self, service: Service, settings: ServiceSettings) -> None:
        self.service = service
        self.settings = settings
        self.registry = CollectorRegistry()
        self.metrics = RpcMetrics(self.registry)
        limit = settings.max_message_mb * 1024 * 1024
        self.server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.so_reuseport", 0),
            ],
            maximum_concurrent_rpcs=settings.max_concurrent_rpcs,
        )
        self.health = health_aio.HealthServicer()
        self.port = 0
        self.metrics_port = 0
        self._metrics_http = None
        self._tasks: list[asyncio.Task] = []
        self.engines_started: asyncio.Task | None = None
        self.readiness: Readiness | None = None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Binds and serves at once (health NOT_SERVING), then starts the engines in the background."""
        registrar = WrappingServer(self.server, HandlerWrapper(self.metrics))
        names = self.service.register(registrar)
        registrar.check_complete()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            self.server,
        )
        self.readiness = Readiness(
            self.health, names, self.service.ready, self.settings.ready_poll_s, self.metrics
        )
        await self.readiness.set(False, "starting")
        self.port = self.server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if self.port == 0:
            raise OSError(f"cannot bind gRPC port {self.address}")
        if self.settings.metrics_port:
            self._metrics_http = serve_http(self.registry, self.settings.host, self.settings.metrics_port)
            self.metrics_port = self._metrics_http.server_port
        await self.server.start()
        log.info(
            "serving",
            extra={"service": self.service.name, "address": self.address, "metrics_port": self.metrics_port},
        )
        self.engines_started = asyncio.create_task(self._start_engines(), name="start-engines")
        self._tasks.append(self.engines_started)

    async def _start_engines(self) -> None:
        await self.service.start()
        self._tasks.append(asyncio.create_task(self.readiness.watch(), name="readiness"))

    async def stop(self, grace: float | None = None) -> None:
        """NOT_SERVING first, then lets in-flight RPCs finish within the grace period, then engines."""
        grace = self.settings.grace_period_s if grace is None else grace
        log.info("stopping", extra={"grace_period_s": grace})
        if self.readiness is not None:
            await self.readiness.shutdown()
        await self.server.stop(grace)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.service.stop()
        if self._metrics_http is not None:
            self._metrics_http.shutdown()
            self._metrics_http.server_close()
        log.info("stopped")

    def engine_failure(self) -> BaseException | None:
        """The exception that ended engine start-up, if it failed."""
        task = self.engines_started
        if task is not None and task.done() and not task.cancelled():
            return task.exception()
        return None


async def serve(service: Service, settings: ServiceSettings) -> int:
    """Serves until SIGTERM or SIGINT, then shuts down gracefully. Returns the process exit code."""
    server = ServiceServer(service, settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    watcher = asyncio.create_task(stop.wait())
    await asyncio.wait({watcher, server.engines_started}, return_when=asyncio.FIRST_COMPLETED)
    failure = server.engine_failure()
    if failure is not None:
        log.error("engine start-up failed", exc_info=failure)
        await server.stop(grace=0)
        return 1
    await watcher
    await server.stop()
    return 0


def main(factory: Callable[[S], Service], settings_cls: type[S], argv: list[str] | None = None) -> None:
    """Entry point of every service's `__main__`: load settings, build the service, serve."""
    args = sys.argv[1:] if argv is None else argv
    try:
        settings = settings_cls.load(args)
    except ConfigError as exc:
        print(f"{settings_cls.__name__}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    prefix = str(settings_cls.model_config.get("env_prefix", ""))
    logs.configure(
        prefix.removeprefix("STORYTELLING_").strip("_").lower(), settings.log_level, settings.log_format
    )
    try:
        service = factory(settings)
    except (ConfigError, ValueError, FileNotFoundError) as exc:
        print(f"{settings_cls.__name__}: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(asyncio.run(serve(service, settings)))
