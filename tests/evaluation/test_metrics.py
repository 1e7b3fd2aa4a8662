"""EvaluationMetrics on result messages: what reaches the evaluators dashboard."""

from prometheus_client import CollectorRegistry

from storytelling.evaluation.metrics import EvaluationMetrics
from storytelling.v1 import common_pb2, evaluation_pb2

OK = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, seconds=1.5)
FAILED = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_FAILED, reason="bad json")


def test_alignment_scores_and_the_judges_false_yes_rate_are_observed():
    registry = CollectorRegistry()
    metrics = EvaluationMetrics(registry)
    metrics.item(
        evaluation_pb2.ItemEvaluation(
            alignment=evaluation_pb2.AlignmentResult(status=OK, score=0.75, false_yes_rate=0.25),
            complexity=evaluation_pb2.ComplexityResult(status=FAILED, score=0.9),
        )
    )
    metrics.alignment(evaluation_pb2.AlignmentResult(status=OK, score=0.5))  # no controls asked

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("storytelling_evaluation_score_sum", evaluator="alignment") == 1.25
    assert sample("storytelling_evaluation_score_bucket", evaluator="alignment", le="0.5") == 1
    assert sample("storytelling_evaluation_false_yes_rate_count") == 1
    assert sample("storytelling_evaluation_false_yes_rate_sum") == 0.25
    assert sample("storytelling_evaluation_results_total", evaluator="complexity", state="failed") == 1
    assert sample("storytelling_evaluation_score_count", evaluator="complexity") == 0, "failed: no score"
    assert sample("storytelling_evaluation_seconds_sum", evaluator="alignment") == 3.0


def test_every_series_starts_at_zero_so_the_first_result_is_an_increase():
    registry = CollectorRegistry()
    EvaluationMetrics(registry)
    for evaluator in ("alignment", "complexity", "text_measures", "diversity"):
        for state in ("ok", "not_run", "failed"):
            assert (
                registry.get_sample_value(
                    "storytelling_evaluation_results_total", {"evaluator": evaluator, "state": state}
                )
                == 0
            )
        assert registry.get_sample_value("storytelling_evaluation_score_count", {"evaluator": evaluator}) == 0
        assert (
            registry.get_sample_value("storytelling_evaluation_seconds_count", {"evaluator": evaluator}) == 0
        )
