"""The rule-based complexity scorer and the VLM path on a tiny random model."""

import math

import pytest

from storytelling.evaluation.complexity import WEIGHTS, Clue, ComplexityEvaluator, RuleScorer
from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.jsonout import OutputError
from storytelling.evaluation.vision import EmbeddedVisionEngine

scorer = RuleScorer()


def test_no_clues_score_zero_and_rich_clues_approach_one() -> None:
    assert scorer.score([]).score == 0.0
    rich = [Clue(d, f"clue {i} of {d}", "an inference") for d in DIMENSIONS for i in range(8)]
    assert scorer.score(rich).score > 0.99


def test_formula() -> None:
    clues = [
        Clue(Dimension.EVENT_CAUSAL_RELATIONSHIP, "water under the sink", "the sink overflowed"),
        Clue(Dimension.LOCATION, "cupboards"),
    ]
    expected = (3 * (1 - math.exp(-1)) + 1 * (1 - math.exp(-0.5))) / sum(WEIGHTS.values())
    result = scorer.score(clues)
    assert result.score == pytest.approx(expected)
    assert {s.dimension: s.count for s in result.by_dimension} == {
        Dimension.EVENT_CAUSAL_RELATIONSHIP: 1,
        Dimension.LOCATION: 1,
    }


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
    evaluator = ComplexityEvaluator(EmbeddedVisionEngine(tiny_vlm), max_repairs=1, max_tokens=8)
    with pytest.raises(OutputError, match="after 2 attempts"):
        await evaluator.evaluate(image)
