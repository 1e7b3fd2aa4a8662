"""The replicas of an OpenAI-compatible engine behind one base URL.

Behind a Kubernetes ClusterIP Service, HTTP keep-alive connections stick to whichever vLLM replica they
first reached, so replicas the autoscaler adds stay idle. With `discovery` set, the pool knows every ready
replica (an `EndpointWatch` on the base URL's host: `dns` polls a headless Service's name, `kubernetes`
watches its EndpointSlices) and sends each request to the replica with the fewest requests in flight,
rotating between equals. Each replica takes at most `per_replica` requests at once (enough for vLLM's
continuous batching to fill its batch, few enough not to queue unboundedly in front of it), so capacity
grows with the replicas. A replica that refuses connections sits out for a cooldown while the others
serve.

Without discovery the base URL is the only replica: the engine behaves as a plain client.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import urllib.parse
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Literal

from storytelling.runtime.endpoints import Endpoint, EndpointWatch, Target

Discovery = Literal["none", "dns", "kubernetes"]
COOLDOWN_S = 5.0


@dataclass
class Replica:
    url: str
    in_flight: int = 0
    down_until: float = 0.0
    served: int = 0

    def available(self, now: float) -> bool:
        return self.down_until <= now


class EndpointPool:
    def __init__(
        self,
        base_url: str,
        discovery: Discovery = "none",
        *,
        per_replica: int = 8,
        cooldown_s: float = COOLDOWN_S,
        watch: EndpointWatch | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.per_replica = per_replica
        self.cooldown_s = cooldown_s
        parts = urllib.parse.urlsplit(self.base_url)
        self._scheme, self._path = parts.scheme, parts.path
        self._fallback = Replica(self.base_url)
        self._replicas: dict[str, Replica] = {}
        self._changed = asyncio.Condition()
        self._turn = 0
        self._tasks: set[asyncio.Task] = set()
        self.watch: EndpointWatch | None = None
        if discovery != "none":
            if parts.hostname is None:
                raise ValueError(f"base_url {base_url!r}: no host to discover replicas of")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            scheme = "kubernetes" if discovery == "kubernetes" else "dns"
            self.watch = watch or EndpointWatch(Target(scheme, parts.hostname, port))
            self.watch.subscribe(self._endpoints_changed)

    @property
    def replicas(self) -> list[Replica]:
        """The replicas known now; the base URL itself until discovery finds any."""
        return list(self._replicas.values()) or [self._fallback]

    async def start(self) -> None:
        if self.watch is not None:
            await self.watch.start()
            await self.watch.wait_resolved(5.0)

    async def close(self) -> None:
        if self.watch is not None:
            await self.watch.close()

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[Replica]:
        """The least busy available replica, held for one request; waits while every replica is full."""
        async with self._changed:
            replica = await self._changed.wait_for(self._pick)
            replica.in_flight += 1
        try:
            yield replica
        finally:
            async with self._changed:
                replica.in_flight -= 1
                replica.served += 1
                self._changed.notify_all()

    def failed(self, replica: Replica) -> None:
        """The replica refused a connection: others take the calls for a while."""
        replica.down_until = time.monotonic() + self.cooldown_s

    def others_available(self, replica: Replica) -> bool:
        now = time.monotonic()
        return any(r is not replica and r.available(now) for r in self.replicas)

    def _pick(self) -> Replica | None:
        now = time.monotonic()
        replicas = self.replicas
        candidates = [r for r in replicas if r.available(now)] or replicas  # all down: try anyway
        free = [r for r in candidates if r.in_flight < self.per_replica]
        if not free:
            return None
        least = min(r.in_flight for r in free)
        tied = [r for r in free if r.in_flight == least]
        self._turn += 1
        return tied[self._turn % len(tied)]

    def _endpoints_changed(self, endpoints: tuple[Endpoint, ...]) -> None:
        urls = [f"{self._scheme}://{endpoint}{self._path}" for endpoint in endpoints]
        self._replicas = {url: self._replicas.get(url) or Replica(url) for url in urls}
        task = asyncio.get_running_loop().create_task(self._wake())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _wake(self) -> None:
        async with self._changed:
            self._changed.notify_all()
