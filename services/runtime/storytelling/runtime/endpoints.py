"""Where a downstream server runs, kept fresh as its replicas come and go.

A target names one server or a set of replicas:
- `host:port`: that address, as gRPC and HTTP clients have always taken it;
- `dns:///host:port`: every address the name resolves to, resolved again every few seconds (a headless
  Kubernetes Service resolves to the addresses of its ready pods);
- `kubernetes:///service[.namespace]:port`: the ready endpoints of a Kubernetes Service, watched through
  its EndpointSlices (`storytelling.runtime.kube`), so a new replica gets traffic as soon as it is ready
  and a stopping one gets none. The port is a number or the name of the Service's port. Outside a
  cluster (no service account) the watch falls back to DNS polling of `service[.namespace]`.

Long-lived connections (gRPC, HTTP keep-alive) would otherwise stick to whichever replica they first
reached: `storytelling.runtime.balancing` and the LLM engines' endpoint pool spread calls over the
endpoints an `EndpointWatch` reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

log = logging.getLogger("storytelling.endpoints")

Scheme = Literal["static", "dns", "kubernetes"]
DNS_INTERVAL_S = 5.0


@dataclass(frozen=True, order=True)
class Endpoint:
    host: str
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host


@dataclass(frozen=True)
class Target:
    scheme: Scheme
    host: str
    # A number, or (kubernetes targets only) the name of the Service's port.
    port: int | str

    @classmethod
    def parse(cls, text: str) -> Target:
        """Parses `host:port`, `dns:///host:port` or `kubernetes:///service[.namespace]:port`.

        Raises ValueError naming the target and what is wrong with it.
        """
        scheme: Scheme = "static"
        rest = text.strip()
        for prefix, name in (("dns:///", "dns"), ("kubernetes:///", "kubernetes"), ("k8s:///", "kubernetes")):
            if rest.startswith(prefix):
                scheme, rest = name, rest.removeprefix(prefix)  # type: ignore[assignment]
                break
        else:
            if "://" in rest:
                raise ValueError(
                    f"target {text!r}: unknown scheme; use host:port, dns:///host:port or "
                    "kubernetes:///service[.namespace]:port"
                )
        host, port = _split_host_port(text, rest)
        if isinstance(port, str) and scheme != "kubernetes":
            raise ValueError(f"target {text!r}: port must be a number (named ports need kubernetes:///)")
        return cls(scheme, host, port)

    def __str__(self) -> str:
        prefix = {"static": "", "dns": "dns:///", "kubernetes": "kubernetes:///"}[self.scheme]
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{prefix}{host}:{self.port}"

    @property
    def tls_name(self) -> str:
        """The name a server certificate of this target carries: the Service's cluster DNS name
        (`service.namespace.svc`) for a kubernetes target with its namespace, else the host."""
        if self.scheme == "kubernetes" and self.host.count(".") == 1:
            return f"{self.host}.svc"
        return self.host

    @property
    def resolvable(self) -> str:
        """`host:port` for a resolver: a kubernetes target's Service name, outside a cluster."""
        if isinstance(self.port, str):
            raise ValueError(f"target {self}: a named port cannot be resolved by DNS")
        return str(Endpoint(self.host, self.port))


def check_target(text: str) -> str:
    """`text` if it parses as a target (a settings validator); raises ValueError saying what is wrong."""
    Target.parse(text)
    return text


def _split_host_port(text: str, rest: str) -> tuple[str, int | str]:
    if rest.startswith("["):
        host, bracket, tail = rest[1:].partition("]")
        if not bracket or not tail.startswith(":"):
            raise ValueError(f"target {text!r}: expected [ipv6]:port")
        port_text = tail[1:]
    else:
        host, colon, port_text = rest.rpartition(":")
        if not colon or not host:
            raise ValueError(f"target {text!r}: expected host:port")
        if "/" in host:
            raise ValueError(f"target {text!r}: expected host:port, without a path")
    if not port_text:
        raise ValueError(f"target {text!r}: missing port")
    if port_text.isdigit():
        port = int(port_text)
        if not 0 < port < 65536:
            raise ValueError(f"target {text!r}: port {port} is out of range")
        return host, port
    return host, port_text


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


Listener = Callable[[tuple[Endpoint, ...]], None]


class EndpointWatch:
    """The current endpoints of a target, refreshed in the background once started.

    `start()` must run in the event loop that will use the endpoints; listeners are called in that loop
    whenever the set changes (never with the same set twice in a row). An empty set is published too:
    callers decide what to do with a Service that has no ready endpoint.
    """

    def __init__(
        self,
        target: Target,
        *,
        dns_interval_s: float = DNS_INTERVAL_S,
        kubernetes_client: object | None = None,
        namespace: str | None = None,
    ) -> None:
        self.target = target
        self.dns_interval_s = dns_interval_s
        self._kubernetes_client = kubernetes_client
        self._namespace = namespace
        self._listeners: list[Listener] = []
        self._endpoints: tuple[Endpoint, ...] = ()
        self._resolved = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._stopper: Callable[[], None] | None = None
        self.source = "static"
        if target.scheme == "static" and _is_ip(target.host) and isinstance(target.port, int):
            self._publish((Endpoint(target.host, target.port),))

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        return self._endpoints

    @property
    def resolved(self) -> bool:
        """Whether a first answer (possibly empty) has come back from the source."""
        return self._resolved.is_set()

    def subscribe(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def start(self) -> None:
        """Starts the refresh in the running loop; idempotent. Static targets resolve once."""
        if self._task is not None or self._stopper is not None or self.resolved:
            return
        loop = asyncio.get_running_loop()
        if self.target.scheme == "kubernetes":
            from storytelling.runtime import kube

            client = self._kubernetes_client or kube.in_cluster_client()
            service, _, namespace = self.target.host.partition(".")
            if client is not None:
                self.source = "kubernetes"
                self._stopper = kube.watch_service(
                    client,
                    namespace.split(".")[0] or self._namespace or kube.current_namespace(),
                    service,
                    self.target.port,
                    lambda endpoints: loop.call_soon_threadsafe(self._publish, endpoints),
                )
                return
            log.info("not in a Kubernetes cluster: resolving %s by DNS", self.target)
            if isinstance(self.target.port, str):
                log.error("target %s: a named port cannot be resolved by DNS; no endpoints", self.target)
                self._publish(())
                return
        self.source = "dns"
        once = self.target.scheme == "static"
        self._task = loop.create_task(self._poll_dns(once), name=f"resolve {self.target}")

    async def wait_resolved(self, timeout_s: float) -> tuple[Endpoint, ...]:
        """The endpoints once the source first answered, or the (possibly empty) set after `timeout_s`."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._resolved.wait()
        return self._endpoints

    async def close(self) -> None:
        if self._stopper is not None:
            self._stopper()
            self._stopper = None
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _publish(self, endpoints: tuple[Endpoint, ...]) -> None:
        endpoints = tuple(sorted(set(endpoints)))
        first = not self._resolved.is_set()
        self._resolved.set()
        if endpoints == self._endpoints and not first:
            return
        if endpoints != self._endpoints:
            log.info(
                "endpoints changed",
                extra={"target": str(self.target), "endpoints": [str(e) for e in endpoints]},
            )
        self._endpoints = endpoints
        for listener in list(self._listeners):
            listener(endpoints)

    async def _poll_dns(self, once: bool) -> None:
        host, port = self.target.host, self.target.port
        if isinstance(port, str):
            raise ValueError(f"target {self.target}: a named port cannot be resolved by DNS")
        loop = asyncio.get_running_loop()
        while True:
            try:
                infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                log.warning("cannot resolve %s: %s", host, exc)
                if not self.resolved:
                    self._publish(())
            else:
                self._publish(tuple(Endpoint(str(info[4][0]), port) for info in infos))
            if once:
                return
            await asyncio.sleep(self.dns_interval_s)
