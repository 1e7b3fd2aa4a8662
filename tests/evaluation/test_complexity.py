"""The rule-based complexity scorer and the VLM path on a tiny random model."""

import pytest

from storytelling.evaluation.complexity import Clue, ComplexityEvaluator, RuleScorer
from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.jsonout import OutputError
from storytelling.llm.embedded import EmbeddedChatEngine

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
