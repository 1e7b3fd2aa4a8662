"""grpc.health.v1 that follows the service's own readiness, not just the process being up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from grpc_health.v1 import health_pb2
from grpc_health.v1.health import aio as health_aio

from storytelling.runtime.metrics import RpcMetrics

log = logging.getLogger("storytelling.health")

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class Readiness:
    """Polls `probe` and mirrors the answer into health status for each service and the server ("")."""

    def __init__(
        self,
        servicer: health_aio.HealthServicer,
        services: list[str],
        probe: Callable[[], Awaitable[tuple[bool, str]]],
        interval_s: float,
        metrics: RpcMetrics | None = None,
    ) -> None:
        self._servicer = servicer
        self._names = ["", *services]
        self._probe = probe
        self._interval = interval_s
        self._metrics = metrics
        self.ready = False
        self.reason = "starting"

    async def set(self, ready: bool, reason: str) -> None:
        if (ready, reason) != (self.ready, self.reason):
            log.info("readiness changed", extra={"ready": ready, "reason": reason})
        self.ready, self.reason = ready, reason
        status = SERVING if ready else NOT_SERVING
        for name in self._names:
            await self._servicer.set(name, status)
        if self._metrics is not None:
            self._metrics.ready.set(1 if ready else 0)

    async def watch(self) -> None:
        """Runs until cancelled. A probe that raises counts as not ready, with the error as reason."""
        while True:
            try:
                ready, reason = await self._probe()
            except Exception as exc:  # noqa: BLE001 - a failing probe means "not ready", never a crash
                ready, reason = False, f"readiness probe failed: {exc}"
            await self.set(ready, reason)
            await asyncio.sleep(self._interval)

    async def shutdown(self) -> None:
        """Marks everything NOT_SERVING for good: load balancers drain us during the grace period."""
        self.ready, self.reason = False, "shutting down"
        await self._servicer.enter_graceful_shutdown()
        if self._metrics is not None:
            self._metrics.ready.set(0)
