"""The ready endpoints of a Kubernetes Service, from a watch on its EndpointSlices.

The watch runs in a daemon thread with the official `kubernetes` client (synchronous): list, then watch
from the list's resourceVersion, list again when the server says the version is gone (410) or the
connection breaks, with capped backoff. Objects stay plain dicts in the API's own JSON shape, so the
selection logic (`endpoints_of`) works on recorded API objects as well as live ones.

RBAC: `get`, `list` and `watch` on `discovery.k8s.io/endpointslices` in the Service's namespace (the
Helm chart's Role grants exactly that).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from storytelling.runtime.endpoints import Endpoint

log = logging.getLogger("storytelling.kube")

NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
SERVICE_LABEL = "kubernetes.io/service-name"
WATCH_TIMEOUT_S = 240
MAX_BACKOFF_S = 30.0
MIN_WATCH_S = 1.0


def in_cluster_client() -> Any | None:
    """An API client from the pod's service account, or None outside a cluster (or without the client)."""
    try:
        from kubernetes import client, config
    except ImportError:
        log.warning("the kubernetes package is not installed: endpoints come from DNS")
        return None
    try:
        configuration = client.Configuration()
        config.load_incluster_config(client_configuration=configuration)
    except config.ConfigException:
        return None
    return client.ApiClient(configuration)


def current_namespace() -> str:
    try:
        return NAMESPACE_FILE.read_text().strip() or "default"
    except OSError:
        return "default"


def endpoints_of(slices: Iterable[Mapping[str, Any]], port: int | str) -> tuple[Endpoint, ...]:
    """Addresses of the ready endpoints in `slices`, on the slice port matching `port` (a number or a
    port name). Endpoints whose readiness is unknown count as ready, as the API documents; terminating
    endpoints are not ready. FQDN slices are skipped: they name no address to connect to."""
    found: set[Endpoint] = set()
    for piece in slices:
        if piece.get("addressType") not in ("IPv4", "IPv6"):
            continue
        number = _port_number(piece.get("ports") or [], port)
        if number is None:
            continue
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                continue
            found.update(Endpoint(address, number) for address in endpoint.get("addresses") or [])
    return tuple(sorted(found))


def _port_number(ports: list[Mapping[str, Any]], wanted: int | str) -> int | None:
    for entry in ports:
        number = entry.get("port")
        if number is None:
            continue
        if (isinstance(wanted, str) and entry.get("name") == wanted) or number == wanted:
            return int(number)
    return None


class EndpointSliceWatch:
    """Follows the EndpointSlices of one Service and publishes its ready endpoints on every change."""

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        service: str,
        port: int | str,
        publish: Callable[[tuple[Endpoint, ...]], None],
        *,
        watch_timeout_s: int = WATCH_TIMEOUT_S,
    ) -> None:
        from kubernetes import client

        self._api = client.DiscoveryV1Api(api_client)
        self.namespace, self.service, self.port = namespace, service, port
        self._publish = publish
        self._watch_timeout_s = watch_timeout_s
        self._selector = f"{SERVICE_LABEL}={service}"
        self._stop = threading.Event()
        self._watch: Any = None
        self._slices: dict[str, Mapping[str, Any]] = {}

    def stop(self) -> None:
        self._stop.set()
        if self._watch is not None:
            self._watch.stop()

    def run(self) -> None:
        """Lists and watches until stopped; never raises (errors are logged and retried)."""
        from kubernetes.client.exceptions import ApiException

        backoff = 0.5
        while not self._stop.is_set():
            try:
                version = self._list()
                while not self._stop.is_set():
                    started = time.monotonic()
                    version = self._follow(version)
                    if time.monotonic() - started > MIN_WATCH_S:
                        backoff = 0.5
                        continue
                    # A watch that ends at once, again and again (a proxy cutting it), must not spin.
                    self._stop.wait(backoff)
                    backoff = min(MAX_BACKOFF_S, backoff * 2)
            except ApiException as exc:
                if self._stop.is_set():
                    return
                if exc.status == 410:
                    log.info("endpointslice watch of %s expired; listing again", self.service)
                    continue
                log.warning("endpointslice watch of %s failed: %s %s", self.service, exc.status, exc.reason)
            except Exception as exc:  # noqa: BLE001 - connection errors of every kind: retry
                if self._stop.is_set():
                    return
                log.warning("endpointslice watch of %s failed: %s", self.service, exc)
            self._stop.wait(backoff)
            backoff = min(MAX_BACKOFF_S, backoff * 2)

    def _list(self) -> str:
        response = self._api.list_namespaced_endpoint_slice(
            self.namespace, label_selector=self._selector, _preload_content=False, _request_timeout=30
        )
        listing = json.loads(response.data)
        self._slices = {item["metadata"]["name"]: item for item in listing.get("items") or []}
        self._changed()
        return listing["metadata"].get("resourceVersion", "")

    def _follow(self, version: str) -> str:
        """Applies watch events until the server ends the watch window; returns the last version seen."""
        from kubernetes import watch

        self._watch = watch.Watch()
        stream = self._watch.stream(
            self._api.list_namespaced_endpoint_slice,
            self.namespace,
            label_selector=self._selector,
            resource_version=version,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_s,
            _request_timeout=self._watch_timeout_s + 30,
        )
        for event in stream:
            if self._stop.is_set():
                break
            kind, item = event["type"], event["raw_object"]
            version = item.get("metadata", {}).get("resourceVersion", version)
            name = item.get("metadata", {}).get("name", "")
            if kind in ("ADDED", "MODIFIED"):
                self._slices[name] = item
            elif kind == "DELETED":
                self._slices.pop(name, None)
            else:
                continue  # BOOKMARK: only moves the version on
            self._changed()
        return version

    def _changed(self) -> None:
        self._publish(endpoints_of(self._slices.values(), self.port))


def watch_service(
    api_client: Any,
    namespace: str,
    service: str,
    port: int | str,
    publish: Callable[[tuple[Endpoint, ...]], None],
    **options: Any,
) -> Callable[[], None]:
    """Starts watching in a daemon thread; returns the function that stops it."""
    watcher = EndpointSliceWatch(api_client, namespace, service, port, publish, **options)
    thread = threading.Thread(target=watcher.run, name=f"endpointslices-{service}", daemon=True)
    thread.start()
    return watcher.stop
