"""Set summary of a job: diversity over all its stories plus the means of the per-item evaluations."""

from collections import defaultdict
from collections.abc import Sequence

from storytelling.v1 import common_pb2, evaluation_pb2

_OK = common_pb2.EvaluatorStatus.STATE_OK
_NOT_RUN = common_pb2.EvaluatorStatus.STATE_NOT_RUN


def summarize(
    evaluations: Sequence[evaluation_pb2.ItemEvaluation], diversity: evaluation_pb2.DiversityResult | None
) -> evaluation_pb2.SetSummary:
    """Means over the items where each evaluator ran; statuses say where none did, never a made-up 0."""
    summary = evaluation_pb2.SetSummary(items=len(evaluations))
    if diversity is not None:
        summary.diversity.CopyFrom(diversity)

    alignments = [e.alignment for e in evaluations if e.alignment.status.state == _OK]
    complexities = [e.complexity for e in evaluations if e.complexity.status.state == _OK]
    summary.alignment_status.CopyFrom(_status(alignments, [e.alignment.status for e in evaluations]))
    summary.complexity_status.CopyFrom(_status(complexities, [e.complexity.status for e in evaluations]))
    if alignments:
        summary.mean_alignment = _mean([a.score for a in alignments])
        rates = [a.false_yes_rate for a in alignments if a.HasField("false_yes_rate")]
        if rates:
            summary.mean_false_yes_rate = _mean(rates)
        summary.alignment_by_dimension.extend(_by_dimension(alignments))
    if complexities:
        summary.mean_complexity = _mean([c.score for c in complexities])
    return summary


def _status(
    ran: Sequence[object], statuses: Sequence[common_pb2.EvaluatorStatus]
) -> common_pb2.EvaluatorStatus:
    if ran:
        return common_pb2.EvaluatorStatus(
            state=_OK,
            reason=f"ran on {len(ran)} of {len(statuses)} items",
            engine=next(s.engine for s in statuses if s.state == _OK),
            seconds=sum(s.seconds for s in statuses),
        )
    reasons = sorted({s.reason for s in statuses if s.reason})
    return common_pb2.EvaluatorStatus(state=_NOT_RUN, reason="; ".join(reasons) or "no item evaluated")


def _by_dimension(alignments: Sequence[evaluation_pb2.AlignmentResult]) -> list[common_pb2.DimensionScore]:
    scores: dict[int, list[float]] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for alignment in alignments:
        for dimension in alignment.by_dimension:
            scores[dimension.dimension].append(dimension.score)
            counts[dimension.dimension] += dimension.count
    return [
        common_pb2.DimensionScore(dimension=d, score=_mean(scores[d]), count=counts[d])
        for d in sorted(scores)
    ]


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values)
