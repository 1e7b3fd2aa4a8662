"""Prometheus metrics for gRPC servers, named as in go-grpc-prometheus so standard dashboards apply.

Each server owns a registry, so several services can run in one process (tests) without clashing.
"""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app

if TYPE_CHECKING:
    from storytelling.runtime.tls import ServerCertificates

log = logging.getLogger("storytelling.metrics")

LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
)


@dataclass(slots=True)
class MethodMetrics:
    """Label children bound once per method (and code), so the per-RPC cost is a few locked adds."""

    latency: Histogram
    in_flight: Gauge
    handled: Counter
    service: str
    method: str
    _by_code: dict[str, Counter] = field(default_factory=dict)

    def count(self, code: str) -> None:
        child = self._by_code.get(code)
        if child is None:
            child = self._by_code[code] = self.handled.labels(self.service, self.method, code)
        child.inc()


class RpcMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        labels = ("grpc_service", "grpc_method")
        self._latency = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its end, by method.",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._in_flight = Gauge(
            "grpc_server_in_flight", "RPCs being served now, by method.", labels, registry=registry
        )
        self._handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed, by method and status code.",
            (*labels, "grpc_code"),
            registry=registry,
        )
        self.ready = Gauge(
            "storytelling_service_ready", "1 while the service's engine is ready, else 0.", registry=registry
        )

    def for_method(self, full_method: str) -> MethodMetrics:
        service, _, method = full_method.lstrip("/").partition("/")
        return MethodMetrics(
            latency=self._latency.labels(service, method),
            in_flight=self._in_flight.labels(service, method),
            handled=self._handled,
            service=service,
            method=method,
        )


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the stdlib's name
        """Scrapes are not worth a log line each."""


class MetricsServer(WSGIServer):
    """The /metrics endpoint, a thread per scrape; over TLS when given certificates.

    The TLS handshake runs in the scrape's own thread (not in accept, where one silent client would stall
    every scrape), with the certificate current at that moment.
    """

    daemon_threads = True
    certificates: ServerCertificates | None = None
    handshake_timeout_s = 10.0

    def process_request(self, request: socket.socket, client_address: object) -> None:
        thread = threading.Thread(target=self._serve, args=(request, client_address), daemon=True)
        thread.start()

    def _serve(self, request: socket.socket, client_address: object) -> None:
        try:
            if self.certificates is not None:
                self.certificates.refresh()
                request.settimeout(self.handshake_timeout_s)
                request = self.certificates.context.wrap_socket(request, server_side=True)
                request.settimeout(None)
            self.finish_request(request, client_address)
        except OSError as exc:  # handshake refused, client gone: the scraper sees it, not our logs
            log.debug("metrics request failed", extra={"peer": str(client_address), "error": str(exc)})
        finally:
            self.shutdown_request(request)


def serve_http(
    registry: CollectorRegistry, host: str, port: int, certificates: ServerCertificates | None = None
) -> MetricsServer:
    """Starts the /metrics endpoint in a daemon thread; returns the server to shut down."""
    family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0][0]
    server_class = type("BoundMetricsServer", (MetricsServer,), {"address_family": family})
    server = make_server(host, port, make_wsgi_app(registry), server_class, handler_class=_QuietHandler)
    server.certificates = certificates
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
