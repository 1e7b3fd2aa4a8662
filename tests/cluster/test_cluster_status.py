"""`storytelling cluster status` on recorded API objects.

No Kubernetes API server can run on our machines (no kind, k3s or apiserver binary installs here;
ENGINEERING.md), so the release is a recording: list responses of a release in the API's own JSON shape
(tests/cluster/recorded/release.json, every object validated against the Kubernetes schemas below), with
engines loading their models, a service replica OOM-killed and a painter replica that finds no GPU. The
status is computed from them directly, and the CLI reads them through the real `kubernetes` client from
`FakeApiServer`, which serves the recording over HTTP.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import kubernetes_validate
import pytest
from storytelling.cli.main import main
from storytelling.cluster.status import release_status
from storytelling.runtime.process import free_port

from tests.cluster.apiserver import fake_api_server

RECORDED = json.loads((Path(__file__).parent / "recorded" / "release.json").read_text())
AT = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
P = "sp-storytelling"


def objects() -> dict[str, list[dict]]:
    return {kind: listing["items"] for kind, listing in RECORDED.items() if isinstance(listing, dict)}


@pytest.mark.parametrize("kind", [k for k in RECORDED if not k.startswith("_")])
def test_the_recording_holds_valid_kubernetes_objects(kind):
    listing = RECORDED[kind]
    api_version, item_kind = listing["apiVersion"], listing["kind"].removesuffix("List")
    for item in listing["items"]:
        kubernetes_validate.validate(
            {"apiVersion": api_version, "kind": item_kind, **item}, "1.31", strict=True
        )


@pytest.fixture(scope="module")
def status():
    return release_status("sp", "ml", objects(), AT)


def test_components_say_which_are_ready_loading_or_failing(status):
    states = {c.name: (c.state, c.ready, c.desired) for c in status.components}
    assert list(states) == [
        "orchestrator",
        "story",
        "render",
        "evaluation",
        "storyteller",
        "judge",
        "painter",
    ]
    assert states["story"] == ("ready", 2, 2) and states["orchestrator"] == ("ready", 1, 1)
    assert states["evaluation"] == ("degraded", 1, 2)
    assert states["storyteller"] == ("loading", 0, 1) and states["judge"] == ("loading", 0, 1)
    assert states["painter"] == ("degraded", 1, 2)
    details = {c.name: c.detail for c in status.components}
    assert details["storyteller"] == "loading model for 6m40s"
    assert details["judge"] == "downloading weights (fetch-models) for 3m00s"
    assert details["evaluation"] == "CrashLoopBackOff; last exit: OOMKilled (code 137)"
    assert details["painter"].startswith(
        "unschedulable: 0/5 nodes are available: 2 Insufficient nvidia.com/gpu"
    )
    assert [c.name for c in status.loading] == ["storyteller", "judge"]
    assert not status.ready


def test_release_information_and_the_grafana_url(status):
    assert (status.profile, status.grafana_url) == (
        "gpu-24gb",
        "https://grafana.example.org/d/storytelling-pipeline",
    )
    assert status.api == "34.118.12.7:443 (load balancer)"


def test_each_endpoint_is_listed_ready_or_not(status):
    endpoints = {e.service.removeprefix(f"{P}-"): e for e in status.endpoints}
    assert "orchestrator-headless" not in endpoints
    assert endpoints["story"].ready == ("10.0.1.3:50051", "10.0.1.4:50051") and endpoints["story"].headless
    assert (endpoints["evaluation"].ready, endpoints["evaluation"].not_ready) == (("10.0.1.7:50053",), 1)
    assert (endpoints["storyteller"].ready, endpoints["storyteller"].not_ready) == ((), 1)
    assert endpoints["judge"].ready == () and endpoints["painter"].ready == ("10.0.2.9:8000",)
    assert endpoints["orchestrator"].ports == ("grpc 443",) and not endpoints["orchestrator"].headless


def test_recent_failures_with_their_reasons_newest_first(status):
    failures = [(f.object, f.reason, f.count, f.age_s) for f in status.failures]
    assert failures == [
        (f"pod/{P}-storyteller-8b7a-efghi", "Unhealthy", 39, 10.0),
        (f"pod/{P}-evaluation-6f8d-zabcd", "BackOff", 7, 50.0),
        (f"pod/{P}-evaluation-6f8d-zabcd", "OOMKilled", 3, 90.0),
        (f"pod/{P}-painter-4a3b-tuvwx", "FailedScheduling", 12, 120.0),
    ]
    oom = status.failures[2]
    assert oom.message == "container evaluation exited with code 137"
    assert all("other-app" not in f.object for f in status.failures), "another app's events are not ours"


def test_an_unknown_release_says_so():
    empty = release_status("nope", "ml", {kind: [] for kind in objects()}, AT)
    assert not empty.ready and empty.notes == ("no workloads of release 'nope' in namespace 'ml'",)


def kubeconfig(tmp_path: Path, server: str) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "recorded", "cluster": {"server": server}}],
                "users": [{"name": "reader", "user": {"token": "recorded-token"}}],
                "contexts": [{"name": "recorded", "context": {"cluster": "recorded", "user": "reader"}}],
                "current-context": "recorded",
            }
        )
    )
    return path


def test_the_cli_reads_the_release_through_the_kubernetes_client(tmp_path, capsys):
    with fake_api_server() as api:
        api.load({k: v for k, v in RECORDED.items() if not k.startswith("_")})
        config = kubeconfig(tmp_path, api.url)
        code = main(["cluster", "status", "--kubeconfig", str(config), "-n", "ml", "--release", "sp"])
        out = capsys.readouterr().out
        assert code == 1, "not every component is ready"
        assert out.startswith("release sp in ml, profile gpu-24gb: 3 of 7 components ready")
        assert "Grafana: https://grafana.example.org/d/storytelling-pipeline" in out
        assert "engines still loading their models: storyteller, judge" in out
        for heading in ("COMPONENTS", "PODS", "ENDPOINTS", "RECENT FAILURES"):
            assert f"\n{heading}\n" in out
        assert "FailedScheduling" in out and "OOMKilled" in out and "other-app" not in out
        assert "10.0.1.3:50051, 10.0.1.4:50051" in out

        assert (
            main(["cluster", "status", "--kubeconfig", str(config), "-n", "ml", "--release", "sp", "--json"])
            == 1
        )
        data = json.loads(capsys.readouterr().out)
        assert data["ready"] is False and len(data["components"]) == 7
    selectors = [r for r in api.requests if "endpointslices" in r]
    assert selectors and "service-name+in+%28" in selectors[0].replace("%20", "+")


def test_an_unreachable_api_is_an_error_naming_it(tmp_path, capsys):
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}")
    assert main(["cluster", "status", "--kubeconfig", str(config), "-n", "ml"]) == 1
    assert "cannot reach the Kubernetes API at http://127.0.0.1:" in capsys.readouterr().err
