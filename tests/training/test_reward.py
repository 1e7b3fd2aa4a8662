"""The DPO reward: the story service's checks gate it, the evaluation service's measures make it."""

import pytest
from storytelling.training.reward import RewardWeights, format_check, reward
from storytelling.training.scoring import StoryMeasures

SCENE = (
    "On a rainy evening in a crowded train station, a young conductor in a blue cap kneels beside a "
    "lost little girl clutching a stuffed rabbit, while her frantic mother pushes through the crowd "
    "behind them with tears on her cheeks. A torn ticket lies at the girl's feet, showing why the "
    "conductor stopped her at the gate, and commuters glance back with worried faces."
)
GOOD = StoryMeasures(dimensions_covered=7, repetition=0.0, words=100, max_similarity=0.3)


def test_an_accepted_rich_new_story_scores_one():
    fmt = format_check(SCENE, "stop")
    assert (fmt.score, fmt.story, fmt.reason) == (1.0, SCENE, "")
    assert reward(fmt, GOOD).score == pytest.approx(1.0)


def test_cleaning_happens_before_the_checks():
    fmt = format_check(f"Sure! Here is the description:\n\n**{SCENE}**", "stop")
    assert fmt.score == 1.0 and fmt.story == SCENE


def test_unusable_output_scores_zero_whatever_its_measures():
    assert format_check("", "stop").score == 0.0
    short = format_check("A cat.", "stop")
    assert (short.score, short.reason) == (0.0, "too_short")
    assert reward(short, GOOD).score == 0.0


def test_salvageable_output_is_half_format():
    truncated = format_check(SCENE + " The girl", "length")
    assert (truncated.score, truncated.reason, truncated.story) == (0.5, "truncated", SCENE)
    multi = format_check(SCENE + " Then the train leaves, and later the mother smiles.", "stop")
    assert (multi.score, multi.reason) == (0.5, "multi_moment")
    # weights format 1, coverage 1, novelty, repetition and length 0.5 each
    assert reward(multi, GOOD).score == pytest.approx((1 * 0.5 + 1 * 1 + 0.5 + 0.5 + 0.5) / 3.5)


def test_components_follow_the_measures():
    fmt = format_check(SCENE, "stop")
    copy = reward(fmt, StoryMeasures(7, 0.0, 100, max_similarity=1.0)).components
    paraphrase = reward(fmt, StoryMeasures(7, 0.0, 100, max_similarity=0.775)).components
    assert copy["novelty"] == 0.0 and paraphrase["novelty"] == pytest.approx(0.5)
    looping = reward(fmt, StoryMeasures(7, 0.3, 100, 0.3)).components
    assert looping["repetition"] == 0.0
    assert reward(fmt, StoryMeasures(2, 0.05, 100, 0.3)).components["coverage"] == pytest.approx(2 / 7)
    lengths = [
        reward(fmt, StoryMeasures(7, 0.0, w, 0.3)).components["length"] for w in (20, 40, 60, 170, 235, 300)
    ]
    assert lengths == pytest.approx([0.0, 0.5, 1.0, 1.0, 0.5, 0.0])


def test_only_measured_components_count_and_image_scores_join_when_present():
    fmt = format_check(SCENE, "stop")
    text_only = reward(fmt, StoryMeasures(7, 0.0, 100, max_similarity=None))
    assert set(text_only.components) == {"format", "coverage", "repetition", "length"}
    with_images = reward(fmt, StoryMeasures(7, 0.0, 100, 0.3, alignment=0.0, complexity=0.0))
    weights = RewardWeights()
    total = weights.format + weights.coverage + weights.novelty + weights.repetition + weights.length
    assert with_images.score == pytest.approx(total / (total + weights.alignment + weights.complexity))
