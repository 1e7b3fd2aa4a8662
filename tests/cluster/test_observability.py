"""Dashboards and alert rules as code: the generated files are current, and the rules pass promtool."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from scripts import observability
from tests.cluster.chart import ROOT


def test_generated_files_are_current():
    for path, text in observability.render().items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is stale: run `make observability`"


def test_dashboards_cover_what_operators_watch():
    titles = {
        d["uid"]: {p["title"] for p in d["panels"]}
        for d in (observability.dashboard_json(x) for x in observability.DASHBOARDS)
    }
    assert {"Jobs", "Items per minute by stage", "Stage latency percentiles", "Failures by reason",
            "Queue depth per stage"} <= titles["storytelling-pipeline"]  # fmt: skip
    assert {"vLLM time to first token", "vLLM requests waiting and running", "vLLM KV-cache use",
            "Triton queue time per request", "Triton compute time per request", "Triton batch size",
            "GPU use"} <= titles["storytelling-engines"]  # fmt: skip
    assert {"Score distribution over time", "Judge false-yes rate", "Share not run"} <= titles[
        "storytelling-evaluators"
    ]
    for dashboard in observability.DASHBOARDS:
        body = observability.dashboard_json(dashboard)
        positions = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in body["panels"]]
        assert len(set(positions)) == len(positions), "panels overlap"
        assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in body["panels"])
        for panel in body["panels"]:
            assert panel["targets"] and all('namespace=~"$namespace"' in t["expr"] for t in panel["targets"])
        json.dumps(body)


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: run scripts/install_system_deps.sh (Debian's prometheus ships it)")
    return path


def test_alert_rules_are_valid(promtool):
    rules = ROOT / "deploy" / "helm" / "storytelling" / "files" / "alerts.yaml"
    result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 7 rules found" in result.stdout


def test_alert_rules_pass_their_unit_tests(promtool):
    tests = ROOT / "deploy" / "prometheus" / "alerts_test.yaml"
    result = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    names = {rule["alert"] for group in observability.alert_rules()["groups"] for rule in group["rules"]}
    covered = tests.read_text()
    assert all(f"alertname: {name}" in covered for name in names), "every rule has unit tests"
