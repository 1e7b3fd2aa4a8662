"""The Helm chart rendered offline (helm-python-sdk: Helm compiled into the wheel, no cluster), and what
the tests need to reason about its manifests: workloads, containers, env, and NetworkPolicy semantics."""

from __future__ import annotations

import copy
import json

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "storytelling"
RELEASE, NAMESPACE = "sp", "ml"
PREFIX = f"{RELEASE}-storytelling"
# Custom resources: kubernetes-validate has no schema for them; the tests check their fields.
CUSTOM_KINDS = frozenset({"ServiceMonitor", "PrometheusRule", "ScaledObject"})


@cache
def chart():
    import helm_python

    return helm_python.Chart.load(CHART)


def render(values: Mapping[str, Any] | None = None) -> list[dict]:
    """Every manifest the chart renders for `values` (NOTES.txt aside), in a stable order; a fresh copy
    each time (the rendering of each value set is done once)."""
    return copy.deepcopy(_render(json.dumps(values or {}, sort_keys=True)))


@cache
def _render(values: str) -> list[dict]:
    rendered = chart().render(json.loads(values), name=RELEASE, namespace=NAMESPACE)
    docs = []
    for path, text in sorted(rendered.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def example(name: str) -> dict:
    return yaml.safe_load((CHART / "examples" / f"{name}.yaml").read_text())


def objects(docs: Iterable[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def workloads(docs: Iterable[dict]) -> dict[str, dict]:
    """Deployments and StatefulSets by component."""
    return {
        d["metadata"]["labels"]["app.kubernetes.io/component"]: d
        for d in docs
        if d["kind"] in ("Deployment", "StatefulSet")
    }


def container(workload: dict, index: int = 0) -> dict:
    return workload["spec"]["template"]["spec"]["containers"][index]


def env(workload: dict) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container(workload).get("env", []) if "value" in e}


def secret_env(workload: dict) -> dict[str, dict]:
    return {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container(workload).get("env", [])
        if "valueFrom" in e
    }


# NetworkPolicy semantics, enough to compute who may reach whom.


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """Label selector matching; an empty selector selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: Mapping[str, str]
    ports: Mapping[str, int] = field(default_factory=dict)  # container port name -> number
    extra_namespace_labels: Mapping[str, str] = field(default_factory=dict)

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace, **self.extra_namespace_labels}


def release_pods(docs: Iterable[dict]) -> dict[str, Pod]:
    pods = {}
    for component, workload in workloads(docs).items():
        template = workload["spec"]["template"]
        ports = {
            p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        pods[component] = Pod(component, NAMESPACE, template["metadata"]["labels"], ports)
    return pods


def _peer_matches(peer: Mapping[str, Any], pod: Pod, policy_namespace: str) -> bool:
    if "ipBlock" in peer:
        return False  # our pods are never addressed by an ipBlock here
    namespace_ok = (
        selects(peer["namespaceSelector"], pod.namespace_labels)
        if "namespaceSelector" in peer
        else pod.namespace == policy_namespace
    )
    return namespace_ok and selects(peer.get("podSelector"), pod.labels)


def _port_matches(rule_ports: list | None, port: int, pod: Pod) -> bool:
    if not rule_ports:
        return True
    for entry in rule_ports:
        wanted = entry.get("port")
        if wanted is None or wanted == port or (isinstance(wanted, str) and pod.ports.get(wanted) == port):
            return True
    return False


def _policy_types(policy: dict) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress", "Egress"] if "egress" in spec else ["Ingress"])


def allowed(policies: Iterable[dict], source: Pod, destination: Pod, port: int) -> bool:
    """Whether `source` may open a connection to `destination` on `port` under these NetworkPolicies."""
    policies = list(policies)
    return _direction(policies, "Ingress", destination, source, port, destination) and _direction(
        policies, "Egress", source, destination, port, destination
    )


def _direction(policies: list[dict], kind: str, subject: Pod, peer: Pod, port: int, target: Pod) -> bool:
    relevant = [
        p
        for p in policies
        if p["metadata"].get("namespace", NAMESPACE) == subject.namespace
        and kind in _policy_types(p)
        and selects(p["spec"].get("podSelector"), subject.labels)
    ]
    if not relevant:
        return True  # not isolated in this direction
    key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
    for policy in relevant:
        for rule in policy["spec"].get(key) or []:
            peers = rule.get(peers_key)
            if not _port_matches(rule.get("ports"), port, target):
                continue
            if not peers or any(_peer_matches(p, peer, subject.namespace) for p in peers):
                return True
    return False
