"""The rule-based complexity scorer and the VLM path on a tiny random model."""

import pytest

from storytelling.evaluation.complexity import (
    PROMPT,
    SCHEMA,
    Clue,
    ComplexityEvaluator,
    ComplexityScore,
    RuleScorer,
    parse_clues,
)
from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.jsonout import OutputError, OutputMode
from storytelling.evaluation.provenance import Rejected
from storytelling.evaluation.scores import DimensionScore
from storytelling.llm import ChatMessage, SamplingParams, TextPart
from storytelling.llm.embedded import EmbeddedChatEngine
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine

scorer = RuleScorer()


def test_no_clues_score_zero_and_rich_clues_approach_one() -> None:
    assert scorer.score([]).score == 0.0
    rich = [Clue(d, f"clue {i} of {d}", "an inference") for d in DIMENSIONS for i in range(8)]
    assert scorer.score(rich).score > 0.99


def test_formula() -> None:
    """(3 x (1 - e^-1) + 1 x (1 - e^-0.5)) / 11: a causal clue with its inference and a bare location."""
    clues = [
        Clue(Dimension.EVENT_CAUSAL_RELATIONSHIP, "water under the sink", "the sink overflowed"),
        Clue(Dimension.LOCATION, "cupboards"),
    ]
    result = scorer.score(clues)
    assert result.score == pytest.approx(0.2081665, abs=1e-7)
    assert {s.dimension: (s.count, round(s.score, 7)) for s in result.by_dimension} == {
        Dimension.EVENT_CAUSAL_RELATIONSHIP: (1, 0.6321206),
        Dimension.LOCATION: (1, 0.3934693),
    }


@pytest.mark.parametrize(
    ("dimension", "expected"),
    [
        (Dimension.TIME, 0.0574655),
        (Dimension.LOCATION, 0.0574655),
        (Dimension.CHARACTER_ROLE, 0.0574655),
        (Dimension.EVENT, 0.0574655),
        (Dimension.CHARACTER_RELATIONSHIP, 0.1149310),
        (Dimension.MENTAL_STATE, 0.1149310),
        (Dimension.EVENT_CAUSAL_RELATIONSHIP, 0.1723965),
    ],
)
def test_each_dimension_weighs_as_documented(dimension, expected) -> None:
    """Weights 1, 1, 1, 1, 2, 2, 3 (of 11): one clue with an inference scores w x (1 - e^-1) / 11."""
    assert scorer.score([Clue(dimension, "a clue", "an inference")]).score == pytest.approx(
        expected, abs=1e-7
    )


def test_higher_order_inferences_outweigh_entities() -> None:
    entities = [Clue(Dimension.LOCATION, f"object {i}") for i in range(20)]
    reasoning = [
        Clue(Dimension.EVENT_CAUSAL_RELATIONSHIP, "a broken vase by a ball", "the ball broke the vase"),
        Clue(Dimension.MENTAL_STATE, "a lowered head", "the child feels guilty"),
    ]
    assert scorer.score(reasoning).score > scorer.score(entities).score
    assert (
        scorer.score([Clue(Dimension.MENTAL_STATE, "a frown", "she is angry")]).score
        > scorer.score([Clue(Dimension.MENTAL_STATE, "a frown")]).score
    )


def test_repeated_clues_count_once() -> None:
    once = [Clue(Dimension.EVENT, "a kite in a tree", "it got stuck")]
    assert scorer.score(once * 5).score == scorer.score(once).score


async def test_complexity_on_a_tiny_random_vlm_fails_honestly(tiny_vlm, image) -> None:
    """RANDOM weights cannot write JSON: after the bounded repair the evaluator raises, never scores."""
    evaluator = ComplexityEvaluator(EmbeddedChatEngine(tiny_vlm), max_repairs=1, max_tokens=8)
    with pytest.raises(OutputError, match="after 2 attempts"):
        await evaluator.evaluate(image)


def test_clues_count_once_per_dimension_whatever_their_case_and_each_distinct_one_counts() -> None:
    clues = [
        Clue(Dimension.EVENT, "A kite in a tree", "it got stuck"),
        Clue(Dimension.EVENT, "a KITE in a tree", "it got stuck"),
        Clue(Dimension.EVENT, "a dog with a sausage"),
        Clue(Dimension.TIME, "birthday candles", "it is a birthday"),
        Clue(Dimension.LOCATION, "a Straße sign", "the street is in Germany"),
        Clue(Dimension.LOCATION, "a STRASSE SIGN", "the street is in Germany"),
    ]
    result = scorer.score(clues)
    assert result.scorer == "rules/1"
    assert {s.dimension: (s.count, round(s.score, 7)) for s in result.by_dimension} == {
        Dimension.TIME: (1, 0.6321206),  # 1 - e^-1
        Dimension.LOCATION: (1, 0.6321206),  # one clue: caseless matching folds "ß" to "ss"
        Dimension.EVENT: (2, 0.7768698),  # 1 - e^-1.5: a clue with its inference and a bare one
    }


# CLUES_GOOD: time, mental state and causal clues with inferences (1 - e^-1 each) and a bare location
# (1 - e^-0.5): (1 + 2 + 3) x 0.6321206 + 1 x 0.3934693 over 11.
GOOD_SCORE = 0.3805630
GOOD_CLUES = [
    Clue(Dimension.TIME, "a decorated tree with gifts", "it is Christmas"),
    Clue(Dimension.MENTAL_STATE, "the boy's wide eyes", "he is afraid of falling"),
    Clue(
        Dimension.EVENT_CAUSAL_RELATIONSHIP,
        "water on the floor below the sink",
        "the sink overflowed because nobody turned off the tap",
    ),
    Clue(Dimension.LOCATION, "cupboards and a sink", ""),
]
BAD_ERRORS = (
    "clues[0].dimension 'weather' is not one of character_relationship, character_role, event, "
    "event_causal_relationship, location, mental_state, time; clues[1].clue must be a non-empty string"
)


def test_parse_clues_normalises_whitespace_and_an_absent_inference_is_empty() -> None:
    raw = (
        '{"clues": [{"dimension": "event", "clue": "  a kite\\n  in a tree ", "inference": " it got\\tstuck"},'
        ' {"dimension": "location", "clue": "a beach"}]}'
    )
    assert parse_clues(raw) == [
        Clue(Dimension.EVENT, "a kite in a tree", "it got stuck"),
        Clue(Dimension.LOCATION, "a beach", ""),
    ]


@pytest.mark.parametrize(
    ("raw", "errors"),
    [
        ('{"clues": [], "notes": "none"}', ['expected {"clues": [...]} and no other keys']),
        ('{"clues": {"dimension": "time"}}', ['expected {"clues": [...]} and no other keys']),
        ('{"clues": ["a kite", 3]}', ["clues[0] must be an object", "clues[1] must be an object"]),
        (
            '{"clues": [{"dimension": "event", "clue": "   "}, {"dimension": "time"}]}',
            ["clues[0].clue must be a non-empty string", "clues[1].clue must be a non-empty string"],
        ),
        (
            '{"clues": [{"dimension": "event", "clue": "a kite", "inference": 3}]}',
            ["clues[0].inference must be a string"],
        ),
    ],
)
def test_parse_clues_names_every_fault(raw, errors) -> None:
    with pytest.raises(OutputError) as err:
        parse_clues(raw)
    assert err.value.errors == errors


def asked(image, prompt: str) -> list[ChatMessage]:
    return [ChatMessage("user", (image.part(), TextPart(prompt)))]


async def test_evaluate_scores_the_clues_greedily_with_the_rule_scorer(image) -> None:
    engine = RecordedChatEngine([recorded.CLUES_GOOD])
    rejected: list[Rejected] = []
    report = await ComplexityEvaluator(engine).evaluate(image, rejected)
    assert engine.conversations == [asked(image, PROMPT)]
    assert engine.params == [SamplingParams(temperature=0.0, max_tokens=768)]
    assert (report.clues, report.raw, rejected) == (GOOD_CLUES, recorded.CLUES_GOOD, [])
    assert report.score.scorer == "rules/1"
    assert report.score.score == pytest.approx(GOOD_SCORE, abs=1e-7)


async def test_the_schema_mode_constrains_the_decoding_to_the_clues_schema(image) -> None:
    engine = RecordedChatEngine([recorded.CLUES_GOOD])
    report = await ComplexityEvaluator(engine, mode=OutputMode.JSON_SCHEMA).evaluate(image)
    assert engine.params == [SamplingParams(temperature=0.0, max_tokens=768, json_schema=SCHEMA)]
    assert report.clues == GOOD_CLUES


async def test_evaluate_asks_again_with_the_errors_and_keeps_the_rejected_output(image) -> None:
    engine = RecordedChatEngine([recorded.CLUES_BAD, recorded.CLUES_GOOD])
    rejected: list[Rejected] = []
    report = await ComplexityEvaluator(engine, max_tokens=300).evaluate(image, rejected)
    assert engine.conversations == [
        asked(image, PROMPT),
        asked(
            image,
            f"{PROMPT}\nYour previous reply was rejected: {BAD_ERRORS}. Reply with only the corrected JSON object.",
        ),
    ]
    assert engine.params[1] == SamplingParams(temperature=0.0, max_tokens=300)
    assert (report.clues, report.raw) == (GOOD_CLUES, recorded.CLUES_GOOD)
    assert rejected == [Rejected("invalid_clues", BAD_ERRORS, recorded.CLUES_BAD)]


async def test_evaluate_gives_up_after_one_repair_by_default_and_keeps_every_rejected_output(image) -> None:
    engine = RecordedChatEngine([recorded.CLUES_BAD] * 3)
    rejected: list[Rejected] = []
    with pytest.raises(OutputError) as err:
        await ComplexityEvaluator(engine).evaluate(image, rejected)
    assert len(engine.conversations) == 2
    assert rejected == [Rejected("invalid_clues", BAD_ERRORS, recorded.CLUES_BAD)] * 2
    assert err.value.errors == [f"no parseable clue list after 2 attempts: {recorded.CLUES_BAD!r}"]
    engine = RecordedChatEngine(["x" * 300, "y" * 300, "z" * 300])
    with pytest.raises(OutputError) as err:
        await ComplexityEvaluator(engine, max_repairs=2).evaluate(image)
    assert len(engine.conversations) == 3
    assert err.value.errors == [f"no parseable clue list after 3 attempts: {'z' * 200!r}"]  # the last, cut


class HalfScorer:
    """A stand-in for a learned discriminator: rates any clue list 0.5."""

    name = "half/1"

    def score(self, clues: list[Clue]) -> ComplexityScore:
        return ComplexityScore(0.5, [DimensionScore(Dimension.EVENT, 0.5, len(clues))], self.name)


async def test_evaluate_uses_the_scorer_it_is_given(image) -> None:
    engine = RecordedChatEngine([recorded.CLUES_GOOD])
    report = await ComplexityEvaluator(engine, HalfScorer()).evaluate(image)
    assert report.score == ComplexityScore(0.5, [DimensionScore(Dimension.EVENT, 0.5, 4)], "half/1")
