"""Alignment scoring, control key points and the judge's false-yes rate."""

import math

import pytest

from storytelling.evaluation.alignment import AlignmentEvaluator, JudgedKeyPoint, summarize
from storytelling.evaluation.controls import ControlPoint
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.judge import Judge, Verdict, word
from storytelling.evaluation.keypoints import Extraction, KeyPointExtractor, KeyPointText
from storytelling.llm import ChatMessage, Completion, ImagePart, SamplingParams, TextPart, TokenLogprob
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


class AnsweringJudgeEngine:
    """A judge engine with a given answer per statement: its text, and the first word's top
    log-probabilities (None: the engine gives none). It keeps every request it was sent."""

    kind, endpoint, random_weights, model = "answering", "", False, "answers"

    def __init__(self, answers: dict[str, tuple[str, dict[str, float] | None]]) -> None:
        self.answers = answers
        self.sent: list[tuple[list[ChatMessage], SamplingParams]] = []

    async def chat(self, messages: list[ChatMessage], params: SamplingParams) -> Completion:
        self.sent.append((list(messages), params))
        statement = messages[0].text.split('"')[1]
        text, top = self.answers[statement]
        logprobs = None if top is None else [TokenLogprob("\n", 0.0, {}), TokenLogprob(text, 0.0, top)]
        return Completion(text, "stop", 0, 0, self.model, logprobs)


def test_the_judge_asks_greedily_for_the_first_word_and_twenty_alternatives() -> None:
    params = Judge(AnsweringJudgeEngine({})).params
    assert params == SamplingParams(temperature=0.0, max_tokens=4, top_logprobs=20)


async def test_each_key_point_and_control_is_asked_once_with_the_image_and_scored_by_its_own_answer(
    image,
) -> None:
    tray, upset, whistle = "A boy drops a tray.", "The boy looks upset.", "A referee blows a whistle."
    engine = AnsweringJudgeEngine(
        {
            tray: (" Yes ", {" Yes": math.log(0.6), "no": math.log(0.2)}),  # P(yes) = 0.6 / 0.8
            upset: ("No, he smiles.", None),  # no log-probabilities: the answer's first word decides
            whistle: ("yes.", None),
        }
    )
    evaluator = AlignmentEvaluator(
        KeyPointExtractor(RecordedChatEngine([recorded.KEY_POINTS_GOOD])),
        Judge(engine, top_logprobs=7, max_tokens=3),
    )
    extraction = Extraction([KeyPointText(EVENT, tray), KeyPointText(MENTAL, upset)], "raw")
    report = await evaluator.evaluate(
        image, extraction, [ControlPoint(KeyPointText(EVENT, whistle), "story-7")]
    )

    verdicts = [
        (j.key_point.text, j.verdict.answer, j.verdict.score, j.verdict.from_logprobs, j.control_of)
        for j in report.key_points
    ]
    assert verdicts == [
        (tray, "Yes", pytest.approx(0.75), True, None),
        (upset, "No, he smiles.", 0.0, False, None),
        (whistle, "yes.", 1.0, False, "story-7"),
    ]
    assert report.score == pytest.approx(0.375) and report.false_yes_rate == 1.0
    assert report.extraction is extraction
    assert report.key_points[0].verdict.question == (
        'Does this image show the following? "A boy drops a tray." Answer with yes or no.'
    )
    # One request per statement: the image, then the question, in one user message.
    assert len(engine.sent) == 3
    for (message,), params in engine.sent:
        assert message.role == "user" and message.parts[0] == ImagePart(image.data, image.mime)
        assert isinstance(message.parts[1], TextPart) and len(message.parts) == 2
        assert params == SamplingParams(temperature=0.0, max_tokens=3, top_logprobs=7)
    assert len((await evaluator.extract("A story.")).key_points) == 7  # the extractor's, unchanged


@pytest.mark.parametrize(
    ("token", "expected"),
    [("▁Yes", "yes"), ("Yes▁there", "yes"), ("ĠNo", "no"), ("NoĠway", "no"), (" YES!", "yes"), ("", "")],
)
def test_a_tokens_first_word_drops_tokenizer_space_markers(token: str, expected: str) -> None:
    assert word(token) == expected
