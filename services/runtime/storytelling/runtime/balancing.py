"""Client-side round-robin over every replica of a gRPC server.

gRPC keeps one long-lived HTTP/2 connection per channel, so behind a ClusterIP Service every client
sticks to one pod and replicas added later get nothing. Instead each client keeps a channel whose target
lists every ready endpoint (`ipv4:a:p,b:p`) under gRPC's `round_robin` policy: calls rotate over the
replicas, and a replica that stops answering is skipped by gRPC at once. When the endpoints change (an
`EndpointWatch` says so) the client is rebuilt for the new set and connected before it takes calls (gRPC
would otherwise send a burst of calls to whichever replica connects first); the previous one is closed
once the calls that leased it have ended, so a rebuild never cuts a running call.

`Balanced` builds any client from such a target string: a `grpc.aio.Channel` (`balanced_channel`) or a
library client that makes its own channel from a URL (tritonclient).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import grpc
from storytelling.runtime.endpoints import Endpoint, EndpointWatch, Target

log = logging.getLogger("storytelling.balancing")

T = TypeVar("T")

ROUND_ROBIN = ("grpc.service_config", json.dumps({"loadBalancingConfig": [{"round_robin": {}}]}))
# Time a rebuilt client gets to connect to its endpoints before it takes calls, and the pause after the
# first connection that lets the other endpoints (connecting at the same moment) join the rotation.
CONNECT_TIMEOUT_S = 5.0
FIRST_RESOLUTION_S = 5.0
SETTLE_S = 0.25
# How long a retired client may keep serving calls it had already started.
DRAIN_S = 3600.0


def grpc_target(endpoints: Sequence[Endpoint], fallback: str) -> str:
    """The gRPC target listing `endpoints` (one address family: the larger one), or `fallback`."""
    if not endpoints:
        return fallback
    v6 = [e for e in endpoints if e.is_ipv6]
    v4 = [e for e in endpoints if not e.is_ipv6]
    if len(v6) > len(v4):
        return "ipv6:" + ",".join(str(e) for e in v6)
    return "ipv4:" + ",".join(str(e) for e in v4)


@dataclass
class _Generation(Generic[T]):
    client: T
    target: str
    leases: int = 0
    retired: bool = False
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class Balanced(Generic[T]):
    """A client for the current endpoints of a target, rebuilt when they change.

    Created outside any event loop (services are built before the runtime's loop runs); the watch starts
    on first use, in the loop that uses the client. Until the source first answers, the client goes to
    the target's own name (gRPC's DNS resolution).
    """

    def __init__(
        self,
        target: Target | str,
        build: Callable[[str], T],
        close: Callable[[T], Awaitable[None]],
        *,
        connect: Callable[[T], Awaitable[object]] | None = None,
        watch: EndpointWatch | None = None,
    ) -> None:
        self.target = Target.parse(target) if isinstance(target, str) else target
        self.watch = watch or EndpointWatch(self.target)
        self._build, self._close, self._connect = build, close, connect
        self._pending: _Generation[T] | None = None
        self._current: _Generation[T] | None = None
        self._tasks: set[asyncio.Task] = set()
        self._started = False
        self.watch.subscribe(self._endpoints_changed)

    @property
    def fallback(self) -> str:
        """What gRPC resolves itself before the watch answers (or for a name it cannot watch)."""
        if isinstance(self.target.port, str):
            return f"dns:///{self.target.host}"  # never connects: the watch supplies the port
        return f"dns:///{self.target.resolvable}"

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The endpoints the watch reports now (the client switches to them once connected)."""
        return self.watch.endpoints

    @property
    def address(self) -> str:
        """The gRPC target of the client that takes calls now ('' before first use)."""
        return self._current.target if self._current is not None else ""

    async def start(self) -> None:
        """Starts the watch and waits (briefly) for its first answer, so that the first calls already go
        to the endpoints; optional, since first use starts the watch too."""
        self._start()
        await self.watch.wait_resolved(FIRST_RESOLUTION_S)

    def current(self) -> T:
        """The client for the current endpoints; starts the watch on first use (needs a running loop)."""
        self._start()
        if self._current is None:
            self._current = self._generation(self.watch.endpoints)
        return self._current.client

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[T]:
        """The current client, kept open until the block ends even if the endpoints change meanwhile.

        The first lease waits (briefly) for the watch's first answer, so calls go to the endpoints rather
        than to the target's bare name."""
        if self._current is None and not self.watch.resolved:
            self._start()
            await self.watch.wait_resolved(FIRST_RESOLUTION_S)
        self.current()
        generation = self._current
        assert generation is not None
        generation.leases += 1
        try:
            yield generation.client
        finally:
            generation.leases -= 1
            if generation.retired and generation.leases == 0:
                self._spawn_close(generation)

    def rebuild(self) -> None:
        """A new client for the same endpoints, because what `build` uses changed (rotated certificates);
        the previous one is retired like after an endpoint change."""
        old = self._current
        if old is None:
            return
        self._current = self._generation(self.watch.endpoints)
        old.retired = True
        if old.leases == 0:
            self._spawn_close(old)

    async def aclose(self) -> None:
        await self.watch.close()
        for generation in (self._current, self._pending):
            if generation is not None:
                await self._close(generation.client)
        self._current = self._pending = None
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _start(self) -> None:
        if not self._started:
            self._started = True
            self._spawn(self.watch.start())

    def _generation(self, endpoints: Sequence[Endpoint]) -> _Generation[T]:
        target = grpc_target(endpoints, self.fallback)
        return _Generation(self._build(target), target)

    def _endpoints_changed(self, endpoints: tuple[Endpoint, ...]) -> None:
        old = self._current
        if old is None:
            return  # not used yet: the first use builds for the current set
        target = grpc_target(endpoints, self.fallback)
        if target == (self._pending or old).target:
            return
        if not endpoints:
            log.warning("%s has no ready endpoint; keeping the previous ones until one returns", self.target)
            return
        if self._pending is not None:  # superseded before it connected
            self._pending.retired = True
            self._spawn_close(self._pending)
        self._pending = _Generation(self._build(target), target)
        self._spawn(self._switch(self._pending))

    async def _switch(self, generation: _Generation[T]) -> None:
        """Connects the new client (bounded), then makes it current and retires the old one."""
        if self._connect is not None:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT_S):
                    await self._connect(generation.client)
                await asyncio.sleep(SETTLE_S)
            except Exception as exc:  # noqa: BLE001 - an endpoint that does not answer yet: switch anyway
                log.info("%s: new endpoints not connected yet (%s); switching anyway", self.target, exc)
        if self._pending is not generation:
            return
        old, self._current, self._pending = self._current, generation, None
        if old is not None:
            old.retired = True
            if old.leases == 0:
                self._spawn_close(old)

    def _spawn_close(self, generation: _Generation[T]) -> None:
        if generation.closed.is_set():
            return
        generation.closed.set()
        self._spawn(self._close(generation.client))

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


OpenChannel = Callable[[str, list[tuple[str, object]]], grpc.aio.Channel]


def insecure_channel(address: str, options: list[tuple[str, object]]) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=options)


def balanced_channel(
    target: Target | str,
    options: Sequence[tuple[str, object]] = (),
    *,
    open_channel: OpenChannel = insecure_channel,
    tls_name: str | None = None,
    watch: EndpointWatch | None = None,
    drain_s: float = DRAIN_S,
) -> Balanced[grpc.aio.Channel]:
    """A round-robin `grpc.aio` channel over the target's endpoints, opened by `open_channel(address,
    options)` (plaintext by default; a TLS opener for secured services). Over TLS the certificate is checked
    against `tls_name` (default: the target's TLS name), not the pod addresses dialled. Retired channels
    close with a grace period of `drain_s`, so calls made on them without a lease still finish."""
    parsed = Target.parse(target) if isinstance(target, str) else target
    all_options = [*options, ROUND_ROBIN, ("grpc.ssl_target_name_override", tls_name or parsed.tls_name)]

    def build(address: str) -> grpc.aio.Channel:
        return open_channel(address, all_options)

    async def close(channel: grpc.aio.Channel) -> None:
        await channel.close(grace=drain_s)

    async def connect(channel: grpc.aio.Channel) -> None:
        await channel.channel_ready()

    return Balanced(parsed, build, close, connect=connect, watch=watch)
