"""Alignment scoring, control key points and the judge's false-yes rate."""

import pytest

from storytelling.evaluation.alignment import AlignmentEvaluator, JudgedKeyPoint, summarize
from storytelling.evaluation.controls import ControlPoint
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.judge import Judge, Verdict
from storytelling.evaluation.keypoints import Extraction, KeyPointExtractor, KeyPointText
from storytelling.llm.embedded import EmbeddedChatEngine
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine

EVENT, MENTAL = Dimension.EVENT, Dimension.MENTAL_STATE


def judged(dimension: Dimension, score: float, control_of: str | None = None) -> JudgedKeyPoint:
    text = f"A statement about {dimension.value} scored {score}."
    return JudgedKeyPoint(KeyPointText(dimension, text), Verdict("q", "a", score, True), control_of)


def test_scores_false_yes_rate_and_categories() -> None:
    own = [judged(EVENT, 0.9), judged(EVENT, 0.5), judged(MENTAL, 0.2)]
    controls = [
        judged(EVENT, 0.8, "s2"),
        judged(EVENT, 0.51, "s3"),
        judged(MENTAL, 0.5, "s2"),
        judged(EVENT, 0.1, "s4"),
    ]
    report = summarize(Extraction([j.key_point for j in own], "raw"), own + controls)
    assert report.score == pytest.approx((0.9 + 0.5 + 0.2) / 3)  # controls never count towards the score
    assert report.false_yes_rate == pytest.approx(2 / 4)  # 0.8 and 0.51 are yes; 0.5 is not
    by = {s.dimension: (s.score, s.count) for s in report.by_dimension}
    assert by == {EVENT: (pytest.approx(0.7), 2), MENTAL: (pytest.approx(0.2), 1)}
    assert len(report.key_points) == 7  # every key point kept, controls marked
    assert [j.control_of for j in report.key_points if j.is_control] == ["s2", "s3", "s2", "s4"]


def test_no_controls_means_no_false_yes_rate() -> None:
    own = [judged(EVENT, 1.0)]
    assert summarize(Extraction([own[0].key_point], "raw"), own).false_yes_rate is None


async def test_alignment_end_to_end_on_a_tiny_random_vlm(tiny_vlm, image) -> None:
    """RANDOM-weight VLM, in-process: plumbing only. Every key point and control is asked and kept."""
    extractor = KeyPointExtractor(RecordedChatEngine([recorded.KEY_POINTS_GOOD]))
    evaluator = AlignmentEvaluator(extractor, Judge(EmbeddedChatEngine(tiny_vlm), top_logprobs=5))
    extraction = await evaluator.extract("A story.")
    controls = [ControlPoint(KeyPointText(EVENT, "A referee blows a whistle on a football pitch."), "other")]
    report = await evaluator.evaluate(image, extraction, controls)
    assert len(report.key_points) == 8
    assert 0.0 <= report.score <= 1.0 and report.false_yes_rate in (0.0, 1.0)
    for item in report.key_points:
        assert item.verdict.question.startswith('Does this image show the following? "')
        assert item.key_point.text in item.verdict.question
        assert 0.0 <= item.verdict.score <= 1.0
