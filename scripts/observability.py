"""Grafana dashboards and Prometheus alert rules as code (`make observability`).

Writes deploy/helm/storytelling/files/dashboards/*.json (Grafana dashboard JSON, provisioned by the chart
as ConfigMaps for Grafana's sidecar) and files/alerts.yaml (a Prometheus rule file, which the chart wraps
in a PrometheusRule). Tests check the files are current, run every panel's query against a real
Prometheus that scraped the local stack after a short job, and run promtool's unit tests on the rules
(deploy/prometheus/alerts_test.yaml).

Queries use only the metrics' own names and labels (stage, model_name, model, evaluator...) plus a
`namespace` filter, so they answer the same on a cluster (Prometheus Operator adds namespace) and on a
laptop's Prometheus (no namespace label: the "All" value `.*` matches it).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
FILES = ROOT / "deploy" / "helm" / "storytelling" / "files"
NS = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
STAGES = ("story", "render", "evaluate")
# p90 of an item's time in a stage, retries included, above which the stage misses its objective.
STAGE_OBJECTIVES_S = {"story": 180, "render": 300, "evaluate": 300}
FAILURE_RATIO = 0.1


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    # Series that exist only on GPU nodes (NVML): their query is checked, their data cannot be here.
    gpu_only: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    description: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"
    width: int = 12
    height: int = 8


@dataclass(frozen=True)
class Dashboard:
    uid: str
    title: str
    description: str
    panels: tuple[Panel, ...]
    variables: tuple[dict, ...] = field(default_factory=tuple)


def quantiles(
    metric: str, by: str, matchers: str, qs: tuple[float, ...] = (0.5, 0.9, 0.99)
) -> tuple[Query, ...]:
    return tuple(
        Query(
            f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{matchers}}}[{RATE}])))",
            f"p{round(q * 100)} {{{{{by}}}}}",
        )
        for q in qs
    )


def ratio(numerator: str, denominator: str) -> str:
    return f"{numerator} / {denominator}"


PIPELINE = Dashboard(
    uid="storytelling-pipeline",
    title="StorytellingPainter / Pipeline",
    description="Jobs, items through story, render and evaluation, stage latency, failures and queues.",
    panels=(
        Panel(
            "Jobs",
            "Jobs running now and waiting for a slot (max_running_jobs).",
            (Query(f"sum by (state) (storytelling_pipeline_jobs{{{NS}}})", "{{state}}"),),
            width=8,
        ),
        Panel(
            "Jobs ended per hour",
            "Jobs that ended in the last hour, by final state.",
            (
                Query(
                    f"sum by (state) (increase(storytelling_pipeline_jobs_ended_total{{{NS}}}[1h]))",
                    "{{state}}",
                ),
            ),
            width=8,
        ),
        Panel(
            "Items per minute by stage",
            "Items that finished each stage, per minute.",
            (
                Query(
                    f'60 * sum by (stage) (rate(storytelling_pipeline_items_total{{outcome="succeeded",{NS}}}[{RATE}]))',
                    "{{stage}}",
                ),
            ),
            width=8,
        ),
        Panel(
            "Stage latency percentiles",
            "Time from an item's first attempt at a stage to its result, retries included.",
            quantiles("storytelling_pipeline_stage_seconds", "stage", f'outcome="succeeded",{NS}'),
            unit="s",
        ),
        Panel(
            "Queue depth per stage",
            "Items ready for a stage that have not started it: a growing queue means the stage (its engine) "
            "is the bottleneck.",
            (Query(f"sum by (stage) (storytelling_pipeline_queue_depth{{{NS}}})", "{{stage}}"),),
        ),
        Panel(
            "Failures by reason",
            "Item stages that failed after their retries, per minute, by stage and error kind.",
            (
                Query(
                    f"60 * sum by (stage, reason) (rate(storytelling_pipeline_item_failures_total{{{NS}}}[{RATE}]))",
                    "{{stage}}: {{reason}}",
                ),
            ),
        ),
        Panel(
            "Retries per minute",
            "Attempts beyond the first, per minute: transient failures (engine restarting, queue full).",
            (
                Query(
                    f"60 * (sum by (stage) (rate(storytelling_pipeline_attempts_total{{{NS}}}[{RATE}]))"
                    f" - sum by (stage) (rate(storytelling_pipeline_items_total{{{NS}}}[{RATE}])))",
                    "{{stage}}",
                ),
            ),
        ),
        Panel(
            "Service RPC latency p90",
            "Server-side time of each service's RPCs.",
            quantiles("grpc_server_handling_seconds", "grpc_service", NS, (0.9,)),
            unit="s",
        ),
        Panel(
            "RPC errors per minute",
            "RPCs that ended with an error status, by service and code.",
            (
                Query(
                    f'60 * sum by (grpc_service, grpc_code) (rate(grpc_server_handled_total{{grpc_code!="OK",{NS}}}[{RATE}]))',
                    "{{grpc_service}} {{grpc_code}}",
                ),
            ),
        ),
        Panel(
            "Services ready",
            "1 while a service's engine is ready (its gRPC health is SERVING), per pod.",
            (Query(f"min by (job, instance) (storytelling_service_ready{{{NS}}})", "{{job}} {{instance}}"),),
        ),
    ),
)

ENGINES = Dashboard(
    uid="storytelling-engines",
    title="StorytellingPainter / Engines",
    description="vLLM (storyteller, key-point extractor, VLM judge) and Triton (painter).",
    panels=(
        Panel(
            "vLLM time to first token",
            "Time until a request's first token, by served model.",
            quantiles("vllm:time_to_first_token_seconds", "model_name", NS, (0.5, 0.9)),
            unit="s",
        ),
        Panel(
            "vLLM requests waiting and running",
            "Waiting requests are the queue the autoscaler watches.",
            (
                Query(f"sum by (model_name) (vllm:num_requests_waiting{{{NS}}})", "waiting {{model_name}}"),
                Query(f"sum by (model_name) (vllm:num_requests_running{{{NS}}})", "running {{model_name}}"),
            ),
        ),
        Panel(
            "vLLM KV-cache use",
            "Share of the KV cache in use, per served model (mean over replicas).",
            (Query(f"avg by (model_name) (vllm:kv_cache_usage_perc{{{NS}}})", "{{model_name}}"),),
            unit="percentunit",
        ),
        Panel(
            "vLLM generated tokens per second",
            "Decode throughput, per served model.",
            (
                Query(
                    f"sum by (model_name) (rate(vllm:generation_tokens_total{{{NS}}}[{RATE}]))",
                    "{{model_name}}",
                ),
            ),
        ),
        Panel(
            "Triton queue time per request",
            "Mean time a request waited in Triton's queue: what the painter autoscaler watches.",
            (
                Query(
                    ratio(
                        f"sum by (model) (rate(nv_inference_queue_duration_us{{{NS}}}[{RATE}]))",
                        f"sum by (model) (rate(nv_inference_request_success{{{NS}}}[{RATE}])) / 1000",
                    ),
                    "{{model}}",
                ),
            ),
            unit="ms",
        ),
        Panel(
            "Triton compute time per request",
            "Mean time the painter model spent on a request (denoising included).",
            (
                Query(
                    ratio(
                        f"sum by (model) (rate(nv_inference_compute_infer_duration_us{{{NS}}}[{RATE}]))",
                        f"sum by (model) (rate(nv_inference_request_success{{{NS}}}[{RATE}])) / 1000",
                    ),
                    "{{model}}",
                ),
            ),
            unit="ms",
        ),
        Panel(
            "Triton batch size",
            "Requests per execution: above 1 when dynamic batching paints several stories at once.",
            (
                Query(
                    ratio(
                        f"sum by (model) (rate(nv_inference_count{{{NS}}}[{RATE}]))",
                        f"sum by (model) (rate(nv_inference_exec_count{{{NS}}}[{RATE}]))",
                    ),
                    "{{model}}",
                ),
            ),
        ),
        Panel(
            "Triton pending requests",
            "Requests accepted and not yet executed.",
            (Query(f"sum by (model) (nv_inference_pending_request_count{{{NS}}})", "{{model}}"),),
        ),
        Panel(
            "GPU use",
            "GPU utilization and memory of the Triton pods (NVML, on GPU nodes), and Triton's CPU use.",
            (
                Query(f"avg by (instance) (nv_gpu_utilization{{{NS}}})", "GPU {{instance}}", gpu_only=True),
                Query(
                    ratio(
                        f"sum by (instance) (nv_gpu_memory_used_bytes{{{NS}}})",
                        f"sum by (instance) (nv_gpu_memory_total_bytes{{{NS}}})",
                    ),
                    "GPU memory {{instance}}",
                    gpu_only=True,
                ),
                Query(f"avg by (instance) (nv_cpu_utilization{{{NS}}})", "CPU {{instance}}"),
            ),
            unit="percentunit",
        ),
    ),
)

EVALUATOR = {
    "name": "evaluator",
    "label": "Evaluator",
    "type": "custom",
    "query": "alignment,complexity,text_measures,diversity",
    "includeAll": True,
    "allValue": ".*",
    "multi": True,
    "current": {"text": "All", "value": "$__all"},
}
EVAL = f'evaluator=~"$evaluator",{NS}'
RESULTS = "storytelling_evaluation_results_total"


def share(state: str) -> str:
    """Share of results in `state`, 0 (not absent) when none is."""
    matching = f'sum by (evaluator) (rate({RESULTS}{{state="{state}",{EVAL}}}[{RATE}]))'
    every = f"sum by (evaluator) (rate({RESULTS}{{{EVAL}}}[{RATE}]))"
    return f"({matching} or {every} * 0) / {every}"


EVALUATORS = Dashboard(
    uid="storytelling-evaluators",
    title="StorytellingPainter / Evaluators",
    description="Score distributions, the VLM judge's false-yes rate, and how often evaluators did not run.",
    variables=(EVALUATOR,),
    panels=(
        Panel(
            "Score distribution over time",
            "How item scores (and set diversity) spread, per interval; brighter cells hold more results.",
            (
                Query(
                    f"sum by (le) (increase(storytelling_evaluation_score_bucket{{{EVAL}}}[{RATE}]))",
                    "{{le}}",
                    heatmap=True,
                ),
            ),
            kind="heatmap",
            unit="short",
        ),
        Panel(
            "Score percentiles by evaluator",
            "10th, 50th and 90th percentile of the scores of results that ran.",
            quantiles("storytelling_evaluation_score", "evaluator", EVAL, (0.1, 0.5, 0.9)),
            unit="percentunit",
        ),
        Panel(
            "Judge false-yes rate",
            "Mean share of control key points (from other stories) the VLM judge said yes to: its bias. "
            "Read alignment scores against it.",
            (
                Query(
                    ratio(
                        f"sum(rate(storytelling_evaluation_false_yes_rate_sum{{{NS}}}[{RATE}]))",
                        f"sum(rate(storytelling_evaluation_false_yes_rate_count{{{NS}}}[{RATE}]))",
                    ),
                    "false-yes rate",
                ),
            ),
            unit="percentunit",
        ),
        Panel(
            "Share not run",
            "Results that report NOT_RUN (no engine configured or reachable), by evaluator.",
            (Query(share("not_run"), "{{evaluator}}"),),
            unit="percentunit",
        ),
        Panel(
            "Share failed",
            "Results that report FAILED (the engine answered something unusable), by evaluator.",
            (Query(share("failed"), "{{evaluator}}"),),
            unit="percentunit",
        ),
        Panel(
            "Results per minute",
            "Evaluator results by state.",
            (
                Query(
                    f"60 * sum by (evaluator, state) (rate({RESULTS}{{{EVAL}}}[{RATE}]))",
                    "{{evaluator}} {{state}}",
                ),
            ),
        ),
        Panel(
            "Evaluator time p90",
            "Time one evaluator took for one result.",
            quantiles("storytelling_evaluation_seconds", "evaluator", EVAL, (0.9,)),
            unit="s",
        ),
    ),
)

DASHBOARDS = (PIPELINE, ENGINES, EVALUATORS)


def _variables(extra: tuple[dict, ...]) -> list[dict]:
    datasource = {"name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus"}
    namespace = {
        "name": "namespace",
        "label": "Namespace",
        "type": "query",
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "query": {"query": "label_values(storytelling_service_ready, namespace)", "refId": "namespaces"},
        "definition": "label_values(storytelling_service_ready, namespace)",
        "includeAll": True,
        "allValue": ".*",
        "multi": True,
        "refresh": 2,
        "current": {"text": "All", "value": "$__all"},
    }
    return [datasource, namespace, *extra]


def _panel(panel: Panel, panel_id: int, x: int, y: int) -> dict:
    source = {"type": "prometheus", "uid": "${datasource}"}
    targets = [
        {
            "refId": chr(ord("A") + i),
            "datasource": source,
            "expr": query.expr,
            "legendFormat": query.legend,
            **({"format": "heatmap"} if query.heatmap else {}),
        }
        for i, query in enumerate(panel.queries)
    ]
    body = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": source,
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "targets": targets,
        "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
    }
    if panel.kind == "heatmap":
        body["options"] = {"calculate": False, "yAxis": {"unit": "short"}, "cellGap": 1}
    else:
        body["options"] = {
            "legend": {"displayMode": "list", "placement": "bottom"},
            "tooltip": {"mode": "multi"},
        }
    return body


def dashboard_json(dashboard: Dashboard) -> dict:
    panels, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(dashboard.panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": dashboard.uid,
        "title": dashboard.title,
        "description": dashboard.description,
        "tags": ["storytelling"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": False,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "templating": {"list": _variables(dashboard.variables)},
        "panels": panels,
    }


def _alert(
    name: str, expr: str, duration: str, severity: str, summary: str, description: str, **labels
) -> dict:
    return {
        "alert": name,
        "expr": expr,
        "for": duration,
        "labels": {"severity": severity, **labels},
        "annotations": {"summary": summary, "description": description},
    }


def alert_rules() -> dict:
    """The rule file: engine down, a queue growing for 10 minutes, item failure ratio, stage latency over
    its objective, a job stalled."""
    engines = 'component=~"storyteller|judge|painter"'
    rules = [
        _alert(
            "StorytellingEngineDown",
            f"sum by (namespace, component) (up{{{engines}}}) == 0",
            "10m",
            "critical",
            "No {{ $labels.component }} engine replica answers in {{ $labels.namespace }}",
            "Prometheus has scraped no {{ $labels.component }} replica for 10 minutes (longer than a normal "
            "model load): the stages that need it retry and then fail. Check `storytelling cluster status`.",
        ),
        _alert(
            "StorytellingQueueGrowing",
            "sum by (namespace, stage) (deriv(storytelling_pipeline_queue_depth[10m])) > 0"
            " and sum by (namespace, stage) (storytelling_pipeline_queue_depth) > 0",
            "10m",
            "warning",
            "The {{ $labels.stage }} queue has grown for 10 minutes in {{ $labels.namespace }}",
            "Items reach the {{ $labels.stage }} stage faster than it finishes them: its engine is the "
            "bottleneck. Add replicas (or let the autoscaler), or raise the stage's concurrency.",
        ),
        _alert(
            "StorytellingItemFailureRatio",
            'sum by (namespace, stage) (rate(storytelling_pipeline_items_total{outcome="failed"}[15m]))'
            " / sum by (namespace, stage) (rate(storytelling_pipeline_items_total[15m]))"
            f" > {FAILURE_RATIO}",
            "10m",
            "warning",
            f"More than {FAILURE_RATIO:.0%} of items fail at {{{{ $labels.stage }}}} in {{{{ $labels.namespace }}}}",
            "The Pipeline dashboard's Failures by reason panel names the error kinds.",
        ),
        *(
            _alert(
                "StorytellingStageLatencyOverObjective",
                "histogram_quantile(0.9, sum by (namespace, stage, le) (rate("
                f'storytelling_pipeline_stage_seconds_bucket{{stage="{stage}",outcome="succeeded"}}[15m])))'
                f" > {objective}",
                "15m",
                "warning",
                f"p90 of the {stage} stage is over its {objective} s objective in {{{{ $labels.namespace }}}}",
                "Items take longer than the objective in this stage, retries included; the Engines "
                "dashboard shows whether the engine queues or computes slowly.",
                stage=stage,
                objective_seconds=str(objective),
            )
            for stage, objective in STAGE_OBJECTIVES_S.items()
        ),
        _alert(
            "StorytellingJobStalled",
            'sum by (namespace) (storytelling_pipeline_jobs{state="running"}) > 0'
            " unless on (namespace) sum by (namespace) (increase(storytelling_pipeline_items_total[15m])) > 0",
            "10m",
            "critical",
            "Jobs run in {{ $labels.namespace }} but no item has finished a stage for 15 minutes or more",
            "Running jobs make no progress: an engine or service is stuck. Check the Pipeline dashboard's "
            "queues and `storytelling cluster status`.",
        ),
    ]
    return {"groups": [{"name": "storytelling", "rules": rules}]}


def render() -> dict[Path, str]:
    """Every generated file and its content."""
    files = {
        FILES / "dashboards" / f"{d.uid.removeprefix('storytelling-')}.json": json.dumps(
            dashboard_json(d), indent=2
        )
        + "\n"
        for d in DASHBOARDS
    }
    header = "# Generated by scripts/observability.py (`make observability`); edit that, not this file.\n"
    files[FILES / "alerts.yaml"] = header + yaml.safe_dump(alert_rules(), sort_keys=False, width=120)
    return files


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(description=__doc__).parse_args(argv)
    for path, text in render().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
