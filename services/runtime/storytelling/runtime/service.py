"""What a service gives the runtime: its servicers, and the lifecycle of its engines."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import ClassVar

import grpc
from prometheus_client.registry import Collector


class Service(abc.ABC):
    """One StorytellingPainter service. The runtime owns the server; the service owns its engines."""

    name: ClassVar[str]

    @abc.abstractmethod
    def register(self, server: grpc.aio.Server) -> list[str]:
        """Adds the servicers to `server`; returns their full names, for health and reflection."""

    async def start(self) -> None:
        """Connects to or loads engines. Runs after the port is bound; health is NOT_SERVING meanwhile."""

    async def ready(self) -> tuple[bool, str]:
        """Whether the service can do useful work now, and why not. Polled for health checking."""
        return True, ""

    async def stop(self) -> None:
        """Releases engines after in-flight RPCs have finished."""

    def collectors(self) -> Sequence[Collector]:
        """The service's own Prometheus metrics, served beside the runtime's on /metrics."""
        return ()
