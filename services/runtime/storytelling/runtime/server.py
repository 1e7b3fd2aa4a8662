"""Runs a Service: asyncio gRPC server, TLS, authentication, health, reflection, metrics, logs and graceful
shutdown."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import sys
from collections.abc import Callable
from typing import TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client import CollectorRegistry

from storytelling.runtime import logs
from storytelling.runtime.auth import Authenticator, PeerPolicy, TokenFileError, TokenStore
from storytelling.runtime.config import ConfigError, ServiceSettings
from storytelling.runtime.guard import Guard
from storytelling.runtime.handlers import HandlerWrapper, WrappingServer
from storytelling.runtime.health import Readiness
from storytelling.runtime.metrics import RpcMetrics, serve_http
from storytelling.runtime.process import die_with_parent
from storytelling.runtime.service import Service
from storytelling.runtime.tls import CertificateFiles, ServerCertificates, TlsError

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
        self.certificates = _certificates(settings)
        self.tokens = TokenStore(settings.auth_tokens_file) if settings.auth_tokens_file else None
        identities = frozenset(settings.tls_client_identities)
        self.guard = Guard(
            Authenticator(self.tokens) if self.tokens else None,
            PeerPolicy(identities) if identities else None,
        )
        self.port = 0
        self.metrics_port = 0
        self.health_port = 0
        self._health_server: grpc.aio.Server | None = None
        self._metrics_http = None
        self._tasks: list[asyncio.Task] = []
        self.engines_started: asyncio.Task | None = None
        self.readiness: Readiness | None = None

    @property
    def address(self) -> str:
        return f"{self.settings.host}:{self.port}"

    async def start(self) -> None:
        """Binds and serves at once (health NOT_SERVING), then starts the engines in the background."""
        settings = self.settings
        registrar = WrappingServer(self.server, HandlerWrapper(self.metrics, self.guard))
        names = self.service.register(registrar)
        for collector in self.service.collectors():
            self.registry.register(collector)
        # Health is registered bare (probes carry no token); reflection through the wrapper, so it
        # needs a token when the service checks them.
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflected = [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            reflection.aio.ReflectionServicer(reflected), registrar
        )
        registrar.check_complete()
        self.readiness = Readiness(
            self.health, names, self.service.ready, settings.ready_poll_s, self.metrics
        )
        await self.readiness.set(False, "starting")
        address = f"{settings.host}:{settings.port}"
        if self.certificates is not None:
            self.port = self.server.add_secure_port(address, self.certificates.credentials())
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC port {self.address}")
        if settings.health_port:
            await self._serve_health(settings.health_port)
        if settings.metrics_port:
            self._metrics_http = serve_http(
                self.registry,
                settings.metrics_host or settings.host,
                settings.metrics_port,
                self.certificates if settings.metrics_tls else None,
            )
            self.metrics_port = self._metrics_http.server_port
        await self.server.start()
        log.info(
            "serving",
            extra={
                "service": self.service.name,
                "address": self.address,
                "tls": "mutual" if settings.tls_client_ca_file else "on" if settings.tls else "off",
                "token_auth": self.tokens is not None,
                "metrics_port": self.metrics_port,
                "health_port": self.health_port,
            },
        )
        if not settings.tls and not _is_loopback(settings.host):
            log.warning(
                "serving plaintext gRPC on a non-loopback address: anyone on the network can read and "
                "alter the traffic%s; set tls_cert_file and tls_key_file",
                ", bearer tokens included" if self.tokens is not None else "",
            )
        self.engines_started = asyncio.create_task(self._start_engines(), name="start-engines")
        self._tasks.append(self.engines_started)
        if self.tokens is not None:
            self._tasks.append(asyncio.create_task(self._reload_tokens(), name="reload-tokens"))

    async def _serve_health(self, port: int) -> None:
        """grpc.health.v1 alone, in plaintext, for probes that cannot do TLS or send tokens."""
        self._health_server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self._health_server)
        self.health_port = self._health_server.add_insecure_port(f"{self.settings.host}:{port}")
        if self.health_port == 0:
            raise OSError(f"cannot bind health port {self.settings.host}:{port}")
        await self._health_server.start()

    async def _reload_tokens(self) -> None:
        """Picks up added, rotated and revoked tokens without a restart."""
        while True:
            await asyncio.sleep(self.settings.credentials_reload_s)
            await asyncio.to_thread(self.tokens.reload_if_changed)

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
        if self._health_server is not None:
            await self._health_server.stop(0)
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


def _certificates(settings: ServiceSettings) -> ServerCertificates | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    files = CertificateFiles(settings.tls_cert_file, settings.tls_key_file, settings.tls_client_ca_file)
    return ServerCertificates(files, settings.credentials_reload_s)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
    die_with_parent()
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
    try:
        code = asyncio.run(serve(service, settings))
    except (TlsError, TokenFileError) as exc:
        print(f"{settings_cls.__name__}: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    raise SystemExit(code)
