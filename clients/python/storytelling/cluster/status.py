"""What state a Helm release of StorytellingPainter is in, from its Kubernetes objects.

Pure: takes the API objects as the API returns them (JSON dicts: Deployments, StatefulSets, Pods,
Services, EndpointSlices, Events and the release's cluster-info ConfigMap) and a clock, and returns a
`ReleaseStatus`. `storytelling.cluster.fetch` gets the objects with the `kubernetes` client.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

Obj = Mapping[str, Any]
COMPONENT = "app.kubernetes.io/component"
ROLE = "storytelling.dev/role"
# Pipeline order, then anything else by name.
ORDER = ("orchestrator", "story", "render", "evaluation", "storyteller", "judge", "painter")
FAILING_WAIT_REASONS = frozenset(
    {
        "CrashLoopBackOff",
        "ImagePullBackOff",
        "ErrImagePull",
        "CreateContainerConfigError",
        "InvalidImageName",
        "CreateContainerError",
        "RunContainerError",
    }  # fmt: skip
)


@dataclass(frozen=True)
class PodStatus:
    name: str
    component: str
    phase: str
    ready: bool
    restarts: int
    node: str
    # What the pod is doing when it is not ready: "loading model", "downloading weights (fetch-models)",
    # "CrashLoopBackOff: ...", "Pending: ..."; "" when ready.
    activity: str
    since_s: float | None = None


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    kind: str
    role: str
    desired: int
    ready: int
    updated: int
    image: str
    state: str  # ready | loading | progressing | degraded | scaled to zero
    detail: str = ""


@dataclass(frozen=True)
class EndpointsStatus:
    service: str
    ports: tuple[str, ...]
    ready: tuple[str, ...]
    not_ready: int
    headless: bool


@dataclass(frozen=True)
class Failure:
    object: str
    reason: str
    message: str
    count: int
    age_s: float | None


@dataclass(frozen=True)
class ReleaseStatus:
    release: str
    namespace: str
    profile: str
    grafana_url: str
    api: str
    components: tuple[ComponentStatus, ...]
    pods: tuple[PodStatus, ...]
    endpoints: tuple[EndpointsStatus, ...]
    failures: tuple[Failure, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def ready(self) -> bool:
        return bool(self.components) and all(c.state == "ready" for c in self.components)

    @property
    def loading(self) -> tuple[ComponentStatus, ...]:
        return tuple(c for c in self.components if c.state == "loading")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ready": self.ready}


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _age(text: str | None, now: datetime) -> float | None:
    moment = parse_time(text)
    return None if moment is None else max(0.0, (now - moment).total_seconds())


def _component(obj: Obj) -> str:
    labels = obj.get("metadata", {}).get("labels") or {}
    return labels.get(COMPONENT, obj.get("metadata", {}).get("name", ""))


def _order(name: str) -> tuple[int, str]:
    return (ORDER.index(name) if name in ORDER else len(ORDER), name)


def pod_status(pod: Obj, now: datetime) -> PodStatus:
    """A pod's readiness and, when not ready, what it is doing (loading a model, downloading weights,
    crash-looping, unschedulable...)."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    conditions = {c["type"]: c for c in status.get("conditions") or []}
    ready = conditions.get("Ready", {}).get("status") == "True"
    containers = status.get("containerStatuses") or []
    restarts = sum(c.get("restartCount", 0) for c in containers)
    phase = status.get("phase", "Unknown")
    activity, since = "", None
    if meta.get("deletionTimestamp"):
        activity, since = "terminating", _age(meta["deletionTimestamp"], now)
    elif not ready:
        activity, since = _activity(status, conditions, containers, now)
    return PodStatus(
        meta["name"], _component(pod), phase, ready, restarts, spec.get("nodeName", ""), activity, since
    )


def _activity(status: Obj, conditions: Mapping[str, Obj], containers: Sequence[Obj], now: datetime):
    for init in status.get("initContainerStatuses") or []:
        state = init.get("state") or {}
        if "running" in state:
            what = "downloading weights" if init["name"] == "fetch-models" else f"init {init['name']}"
            return f"{what} ({init['name']})", _age(state["running"].get("startedAt"), now)
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") in FAILING_WAIT_REASONS:
            return f"{waiting['reason']} in init {init['name']}: {waiting.get('message', '')}".strip(
                ": "
            ), None
        terminated = state.get("terminated")
        if terminated and terminated.get("exitCode", 0) != 0:
            return (
                f"init {init['name']} failed: {terminated.get('reason', 'Error')} (exit {terminated.get('exitCode')})",
                None,
            )
    for container in containers:
        state = container.get("state") or {}
        waiting = state.get("waiting")
        if waiting and waiting.get("reason") not in (None, "PodInitializing", "ContainerCreating"):
            last = (container.get("lastState") or {}).get("terminated") or {}
            cause = (
                f"; last exit: {last.get('reason', 'Error')} (code {last.get('exitCode')})" if last else ""
            )
            return f"{waiting['reason']}{cause}", None
        if "running" in state and not container.get("started", True):
            # Running, its startup probe not passed yet: an engine loading its model.
            return "loading model", _age(state["running"].get("startedAt"), now)
        if "running" in state and not container.get("ready"):
            return "running, not ready", _age(state["running"].get("startedAt"), now)
    scheduled = conditions.get("PodScheduled", {})
    if scheduled.get("status") == "False":
        return f"unschedulable: {scheduled.get('message', scheduled.get('reason', ''))}", _age(
            scheduled.get("lastTransitionTime"), now
        )
    return status.get("phase", "Pending").lower(), None


def component_status(workload: Obj, kind: str, pods: Sequence[PodStatus]) -> ComponentStatus:
    spec, status = workload.get("spec", {}), workload.get("status", {})
    labels = workload["metadata"].get("labels") or {}
    desired = spec.get("replicas", 1)
    ready = status.get("readyReplicas", 0)
    updated = status.get("updatedReplicas", 0)
    containers = spec.get("template", {}).get("spec", {}).get("containers") or [{}]
    mine = [p for p in pods if p.component == _component(workload)]
    waiting = [p for p in mine if not p.ready and p.activity]
    if desired == 0:
        state, detail = "scaled to zero", ""
    elif ready >= desired and updated >= desired:
        state, detail = "ready", ""
    elif any(p.activity.startswith(("loading model", "downloading weights")) for p in waiting):
        state = "loading"
        detail = "; ".join(sorted({_with_time(p) for p in waiting}))
    elif any(
        p.restarts or "BackOff" in p.activity or "failed" in p.activity or "unschedulable" in p.activity
        for p in waiting
    ):
        state, detail = "degraded", "; ".join(sorted({_with_time(p) for p in waiting}))
    else:
        state, detail = "progressing", "; ".join(sorted({_with_time(p) for p in waiting}))
    return ComponentStatus(
        _component(workload), kind, labels.get(ROLE, ""), desired, ready, updated,
        containers[0].get("image", ""), state, detail,
    )  # fmt: skip


def _with_time(pod: PodStatus) -> str:
    return f"{pod.activity} for {format_duration(pod.since_s)}" if pod.since_s is not None else pod.activity


def endpoints_status(service: Obj, slices: Iterable[Obj]) -> EndpointsStatus:
    name = service["metadata"]["name"]
    ports = tuple(
        f"{p.get('name', '')} {p['port']}".strip() for p in service.get("spec", {}).get("ports") or []
    )
    ready, not_ready = [], 0
    for piece in slices:
        if (piece["metadata"].get("labels") or {}).get("kubernetes.io/service-name") != name:
            continue
        numbers = [p.get("port") for p in piece.get("ports") or [] if p.get("port")]
        for endpoint in piece.get("endpoints") or []:
            if (endpoint.get("conditions") or {}).get("ready") is False:
                not_ready += len(endpoint.get("addresses") or [])
                continue
            for address in endpoint.get("addresses") or []:
                ready.append(f"{address}:{numbers[0]}" if numbers else address)
    headless = service.get("spec", {}).get("clusterIP") == "None"
    return EndpointsStatus(name, ports, tuple(sorted(ready)), not_ready, headless)


def failures(
    events: Iterable[Obj], pods: Sequence[Obj], names: set[str], now: datetime, limit: int
) -> list[Failure]:
    """Warning events about the release's objects, and container terminations with their reasons, newest
    first. `names` are the release's object names: events about ReplicaSets and pods of a Deployment name
    it as their prefix."""
    found: list[tuple[float, Failure]] = []
    for event in events:
        if event.get("type") != "Warning":
            continue
        involved = event.get("involvedObject") or {}
        name = involved.get("name", "")
        if not any(name == n or name.startswith(f"{n}-") for n in names):
            continue
        when = (
            event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
        )
        age = _age(when, now)
        failure = Failure(f"{involved.get('kind', '').lower()}/{name}", event.get("reason", ""),
                          (event.get("message") or "").strip(), int(event.get("count") or 1), age)  # fmt: skip
        found.append((age if age is not None else float("inf"), failure))
    for pod in pods:
        for container in (pod.get("status") or {}).get("containerStatuses") or []:
            last = (container.get("lastState") or {}).get("terminated")
            if not last or last.get("reason") == "Completed":
                continue
            age = _age(last.get("finishedAt"), now)
            message = f"container {container['name']} exited with code {last.get('exitCode')}"
            if last.get("message"):
                message += f": {last['message'].strip()}"
            failure = Failure(f"pod/{pod['metadata']['name']}", last.get("reason", "Error"), message,
                              int(container.get("restartCount", 0)), age)  # fmt: skip
            found.append((age if age is not None else float("inf"), failure))
    found.sort(key=lambda pair: pair[0])
    return [failure for _, failure in found[:limit]]


def release_status(
    release: str,
    namespace: str,
    objects: Mapping[str, Sequence[Obj]],
    now: datetime,
    *,
    max_failures: int = 10,
) -> ReleaseStatus:
    """`objects` by kind: deployments, statefulsets, pods, services, endpointslices, events, configmaps."""
    pods = [pod_status(p, now) for p in objects.get("pods", ())]
    workloads = [(w, "Deployment") for w in objects.get("deployments", ())]
    workloads += [(w, "StatefulSet") for w in objects.get("statefulsets", ())]
    components = sorted(
        (component_status(w, kind, pods) for w, kind in workloads), key=lambda c: _order(c.name)
    )
    services = [s for s in objects.get("services", ()) if not s["metadata"]["name"].endswith("-headless")]
    endpoints = sorted(
        (endpoints_status(s, objects.get("endpointslices", ())) for s in services),
        key=lambda e: _order(e.service.rsplit("-", 1)[-1]),
    )
    info = next(iter(objects.get("configmaps", ())), {}).get("data") or {}
    names = {o["metadata"]["name"] for kind in ("deployments", "statefulsets", "pods", "services")
             for o in objects.get(kind, ())}  # fmt: skip
    names |= {f"data-{o['metadata']['name']}" for o in objects.get("statefulsets", ())}  # their claims
    api = info.get("apiService", "")
    public = next((s for s in objects.get("services", ()) if s["metadata"]["name"] == api), None)
    notes = []
    if not workloads:
        notes.append(f"no workloads of release {release!r} in namespace {namespace!r}")
    return ReleaseStatus(
        release=release,
        namespace=namespace,
        profile=info.get("profile", ""),
        grafana_url=info.get("grafanaUrl", ""),
        api=_api_address(public, info),
        components=tuple(components),
        pods=tuple(sorted(pods, key=lambda p: (_order(p.component), p.name))),
        endpoints=tuple(endpoints),
        failures=tuple(
            failures(objects.get("events", ()), objects.get("pods", ()), names, now, max_failures)
        ),
        notes=tuple(notes),
    )


def _api_address(service: Obj | None, info: Mapping[str, str]) -> str:
    if service is None:
        return ""
    spec = service.get("spec", {})
    port = info.get("apiPort") or str((spec.get("ports") or [{}])[0].get("port", ""))
    ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
    if ingress:
        host = ingress[0].get("hostname") or ingress[0].get("ip")
        return f"{host}:{port} (load balancer)"
    name, namespace = service["metadata"]["name"], service["metadata"].get("namespace", "")
    return f"{name}.{namespace}.svc:{port} ({spec.get('type', 'ClusterIP')})"


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
