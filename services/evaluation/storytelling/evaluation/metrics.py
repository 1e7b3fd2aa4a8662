"""Prometheus metrics of the evaluators, observed on the results the service returns.

The Grafana "evaluators" dashboard and its alerts query these names (deploy/helm/storytelling):
- `storytelling_evaluation_results_total{evaluator,state}`: results by state (ok, not_run, failed), so the
  share not run is a ratio of two rates;
- `storytelling_evaluation_score{evaluator}`: distribution of item scores that ran (alignment, complexity,
  dimensions covered / 7 for the text measures) and of set diversity, in [0, 1];
- `storytelling_evaluation_false_yes_rate`: the VLM judge's false-yes rate on control key points, per item;
- `storytelling_evaluation_seconds{evaluator}`: time each evaluator took per result.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.registry import Collector

from storytelling.v1 import common_pb2, evaluation_pb2

EVALUATORS = ("alignment", "complexity", "text_measures", "diversity")
SCORE_BUCKETS = tuple(round(0.1 * n, 1) for n in range(1, 11))
SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
_STATES = {
    common_pb2.EvaluatorStatus.STATE_OK: "ok",
    common_pb2.EvaluatorStatus.STATE_NOT_RUN: "not_run",
    common_pb2.EvaluatorStatus.STATE_FAILED: "failed",
}


class EvaluationMetrics:
    """The metrics, unregistered unless a registry is given; the service hands them to the runtime's
    registry (`collectors`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.results = Counter(
            "storytelling_evaluation_results",
            "Evaluator results, by evaluator and state (ok, not_run, failed).",
            ["evaluator", "state"],
            registry=registry,
        )
        self.score = Histogram(
            "storytelling_evaluation_score",
            "Scores of the results that ran, in [0, 1], by evaluator.",
            ["evaluator"],
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.false_yes = Histogram(
            "storytelling_evaluation_false_yes_rate",
            "The VLM judge's false-yes rate on control key points, per item.",
            buckets=SCORE_BUCKETS,
            registry=registry,
        )
        self.seconds = Histogram(
            "storytelling_evaluation_seconds",
            "Time an evaluator took for one result, by evaluator.",
            ["evaluator"],
            buckets=SECONDS_BUCKETS,
            registry=registry,
        )

        # Every series exists from the start at zero, so the first result of a burst is an increase that
        # rate() sees, not the first sample of a new series (which rate() cannot tell from a restart).
        for evaluator in EVALUATORS:
            self.score.labels(evaluator)
            self.seconds.labels(evaluator)
            for state in _STATES.values():
                self.results.labels(evaluator, state)

    def collectors(self) -> list[Collector]:
        return [self.results, self.score, self.false_yes, self.seconds]

    def item(self, evaluation: evaluation_pb2.ItemEvaluation) -> None:
        if evaluation.HasField("alignment"):
            self.alignment(evaluation.alignment)
        if evaluation.HasField("complexity"):
            self.complexity(evaluation.complexity)
        if evaluation.HasField("text_measures"):
            measures = evaluation.text_measures
            self._result("text_measures", measures.status, measures.dimensions_covered / 7)

    def alignment(self, result: evaluation_pb2.AlignmentResult) -> None:
        self._result("alignment", result.status, result.score)
        if result.status.state == common_pb2.EvaluatorStatus.STATE_OK and result.HasField("false_yes_rate"):
            self.false_yes.observe(result.false_yes_rate)

    def complexity(self, result: evaluation_pb2.ComplexityResult) -> None:
        self._result("complexity", result.status, result.score)

    def diversity(self, result: evaluation_pb2.DiversityResult) -> None:
        self._result("diversity", result.status, result.diversity)

    def _result(self, evaluator: str, status: common_pb2.EvaluatorStatus, score: float) -> None:
        state = _STATES.get(status.state, "unknown")
        self.results.labels(evaluator, state).inc()
        if status.seconds:
            self.seconds.labels(evaluator).observe(status.seconds)
        if state == "ok":
            self.score.labels(evaluator).observe(score)
