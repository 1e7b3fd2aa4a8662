"""A stand-in for the Kubernetes API server's list and watch endpoints, serving recorded objects.

No API server can run on our machines (no kind, k3s or apiserver binary is installable; ENGINEERING.md),
so the code that talks to one is tested against this: the real `kubernetes` client, over real HTTP,
reading objects in the API's own JSON shape. It implements what our code uses and nothing more:
collection GETs under /api/v1 and /apis/<group>/<version>, namespaced, with an equality labelSelector,
and `watch=true` streams (chunked JSON lines, resourceVersion, timeoutSeconds, 410 Gone once the asked
version is older than the server's history).
"""

from __future__ import annotations

import copy
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_PATH = re.compile(
    r"^/(?:api/v1|apis/(?P<group>[^/]+)/(?P<version>[^/]+))/namespaces/(?P<ns>[^/]+)/(?P<plural>[^/]+)$"
)


class FakeApiServer:
    def __init__(self, port: int = 0, version: int = 100) -> None:
        self._lock = threading.Condition()
        self._objects: dict[tuple[str, str], dict[str, dict]] = {}  # (namespace, plural) -> name -> object
        self._events: list[tuple[int, str, str, str, dict]] = []  # (version, ns, plural, type, object)
        self._version = version
        self.oldest_version = 0  # watches from before this get 410 Gone
        self.expire_next_watch = False  # the next watch gets 410 Gone whatever version it asks for
        self.requests: list[str] = []
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def client(self) -> Any:
        """A `kubernetes` API client pointed at this server."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def start(self) -> FakeApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            self._closing = True
            self._lock.notify_all()
        self._server.shutdown()
        self._server.server_close()

    _closing = False

    # What the test does to the "cluster".

    def load(self, recorded: Mapping[str, Mapping[str, Any]]) -> None:
        """Puts every item of recorded list responses ({plural: {"items": [...]}}) into the cluster."""
        for plural, listing in recorded.items():
            if isinstance(listing, Mapping):
                for item in listing.get("items") or []:
                    self.put(item["metadata"]["namespace"], plural, item)

    def put(self, namespace: str, plural: str, obj: Mapping[str, Any]) -> None:
        """Creates or replaces an object; watchers get ADDED or MODIFIED."""
        with self._lock:
            name = obj["metadata"]["name"]
            bucket = self._objects.setdefault((namespace, plural), {})
            kind = "MODIFIED" if name in bucket else "ADDED"
            self._record(namespace, plural, kind, copy.deepcopy(dict(obj)))

    def delete(self, namespace: str, plural: str, name: str) -> None:
        with self._lock:
            obj = self._objects[(namespace, plural)][name]
            self._record(namespace, plural, "DELETED", obj)

    def end_watches(self) -> None:
        """Ends every open watch stream, as the API server does when a watch's timeout passes."""
        with self._lock:
            self._epoch += 1
            self._lock.notify_all()

    _epoch = 0

    def forget_history(self) -> None:
        """Compacts the event history: watches from an older version get 410 Gone, as after etcd
        compaction, and must list again."""
        with self._lock:
            self.oldest_version = self._version + 1

    def _record(self, namespace: str, plural: str, kind: str, obj: dict) -> None:
        self._version += 1
        obj.setdefault("metadata", {})["resourceVersion"] = str(self._version)
        bucket = self._objects.setdefault((namespace, plural), {})
        if kind == "DELETED":
            bucket.pop(obj["metadata"]["name"], None)
        else:
            bucket[obj["metadata"]["name"]] = obj
        self._events.append((self._version, namespace, plural, kind, copy.deepcopy(obj)))
        self._lock.notify_all()

    # HTTP.

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                if api._closing:  # a stopped server drops kept-alive connections without answering
                    self.close_connection = True
                    return
                parsed = urllib.parse.urlsplit(self.path)
                api.requests.append(self.path)
                match = _PATH.match(parsed.path)
                if match is None:
                    self._json(404, _status(404, "NotFound", f"no route {parsed.path}"))
                    return
                query = {k: v[-1] for k, v in urllib.parse.parse_qs(parsed.query).items()}
                selector = _selector(query.get("labelSelector", ""))
                fields = _selector(query.get("fieldSelector", ""))
                namespace, plural = match["ns"], match["plural"]
                if query.get("watch") in ("true", "1", "True"):
                    self._watch(namespace, plural, selector, query)
                else:
                    self._json(200, api._list(namespace, plural, selector, fields))

            def _json(self, code: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _watch(self, namespace: str, plural: str, selector: dict, query: dict) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    for line in api._stream(namespace, plural, selector, query):
                        self._chunk(line.encode() + b"\n")
                    if api._closing:  # the connection drops mid-stream
                        self.close_connection = True
                        return
                    self._chunk(b"")
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _chunk(self, data: bytes) -> None:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()

        return Handler

    def _list(self, namespace: str, plural: str, selector: dict, fields: dict | None = None) -> dict:
        with self._lock:
            items = [
                copy.deepcopy(o)
                for o in self._objects.get((namespace, plural), {}).values()
                if _matches(o, selector, fields or {})
            ]
            return {"kind": "List", "apiVersion": "v1", "metadata": {"resourceVersion": str(self._version)},
                    "items": items}  # fmt: skip

    def _stream(self, namespace: str, plural: str, selector: dict, query: dict) -> Iterator[str]:
        since = int(query.get("resourceVersion") or self._version)
        deadline = time.monotonic() + float(query.get("timeoutSeconds") or 30)
        with self._lock:
            epoch = self._epoch
            expired, self.expire_next_watch = self.expire_next_watch, False
            if expired or since < self.oldest_version - 1:
                yield json.dumps(
                    {"type": "ERROR", "object": _status(410, "Expired", "too old resource version")}
                )
                return
            while not self._closing and epoch == self._epoch:
                for version, ns, kind_plural, kind, obj in self._events:
                    if (
                        version > since
                        and (ns, kind_plural) == (namespace, plural)
                        and _matches(obj, selector)
                    ):
                        since = version
                        yield json.dumps({"type": kind, "object": obj})
                since = max(since, self._version)
                left = deadline - time.monotonic()
                if left <= 0:
                    return
                self._lock.wait(min(left, 0.5))


def _status(code: int, reason: str, message: str) -> dict:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "reason": reason,
            "message": message, "metadata": {}}  # fmt: skip


_SET = re.compile(r"^\s*([\w./-]+)\s+in\s+\(([^)]*)\)\s*$")


def _selector(text: str) -> dict[str, set[str]]:
    """Equality (`k=v`) and set-based (`k in (a,b)`) label selector terms, as accepted values per key."""
    terms: dict[str, set[str]] = {}
    for term in re.split(r",(?![^(]*\))", text):
        if not term.strip():
            continue
        if match := _SET.match(term):
            terms[match[1]] = {v.strip() for v in match[2].split(",")}
        else:
            key, _, value = term.partition("=")
            terms[key.strip()] = {value.strip()}
    return terms


def _matches(
    obj: Mapping[str, Any], selector: Mapping[str, set[str]], fields: Mapping[str, set[str]] = {}
) -> bool:  # noqa: B006
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(labels.get(k) in v for k, v in selector.items()) and all(
        obj.get(k) in v for k, v in fields.items()
    )


@contextmanager
def fake_api_server(port: int = 0, version: int = 100) -> Iterator[FakeApiServer]:
    server = FakeApiServer(port, version).start()
    try:
        yield server
    finally:
        server.stop()


def endpoint_slice(service: str, name: str, addresses: list[str], port: int, *, ready: bool = True,
                   port_name: str = "grpc") -> dict:  # fmt: skip
    """An EndpointSlice as the EndpointSlice controller writes it for one Service."""
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": "default", "labels": {"kubernetes.io/service-name": service}},
        "addressType": "IPv4",
        "ports": [{"name": port_name, "port": port, "protocol": "TCP"}],
        "endpoints": [
            {"addresses": [address], "conditions": {"ready": ready, "serving": ready, "terminating": False}}
            for address in addresses
        ],
    }
