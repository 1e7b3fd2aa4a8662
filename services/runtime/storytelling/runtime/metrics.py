"""Prometheus metrics for gRPC servers, named as in go-grpc-prometheus so standard dashboards apply.

Each server owns a registry, so several services can run in one process (tests) without clashing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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


def serve_http(registry: CollectorRegistry, host: str, port: int):
    """Starts the /metrics endpoint in a daemon thread; returns the WSGI server to shut down."""
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
