"""Text-side measures with spaCy en_core_web_sm and the embedder (story text only)."""

import pytest

from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.text_measures import TextMeasurer

RICH = (
    "On Christmas morning in a small kitchen, a boy stands on a wobbly stool to steal cookies while his "
    "mother, lost in thought, lets the sink overflow. Because the stool tips, the boy looks terrified, and "
    "his little sister giggles. A nurse rushes in from the hallway."
)
PLAIN = "A red ball lies on the grass."


@pytest.fixture(scope="module")
def measurer(embedder) -> TextMeasurer:
    return TextMeasurer(embedder)


@pytest.fixture(scope="module")
def rules() -> TextMeasurer:
    """The rule cues alone (no embedder)."""
    return TextMeasurer()


def test_rich_story_covers_the_dimensions(measurer) -> None:
    result = measurer.measure(RICH)
    covered = {d.dimension for d in result.dimensions if d.score >= 0.5}
    assert {
        Dimension.TIME,
        Dimension.LOCATION,
        Dimension.CHARACTER_ROLE,
        Dimension.CHARACTER_RELATIONSHIP,
        Dimension.EVENT_CAUSAL_RELATIONSHIP,
        Dimension.MENTAL_STATE,
    } <= covered
    assert result.dimensions_covered == len(covered)
    assert result.characters == 4  # boy, mother, sister, nurse
    assert result.causal_links == 2  # "Because the stool tips"; the sink overflowing beside the tipping stool
    assert result.mental_states >= 2  # terrified, giggles
    assert result.events >= 5
    assert result.words == len(RICH.replace(",", "").replace(".", "").split())
    assert all(0.0 <= d.score <= 1.0 for d in result.dimensions) and len(result.dimensions) == 7


def test_plain_sentence_covers_little(measurer) -> None:
    result = measurer.measure(PLAIN)
    assert result.characters == 0 and result.causal_links == 0 and result.mental_states == 0
    assert result.dimensions_covered <= 1


def test_rules_alone_without_embedder(rules) -> None:
    result = rules.measure("Because it rained, the angry farmer and his son stayed in the barn.")
    assert result.causal_links == 1 and result.mental_states == 1 and result.characters == 2
    assert {d.dimension: d.count for d in result.dimensions}[Dimension.CHARACTER_RELATIONSHIP] == 1


@pytest.mark.parametrize(
    ("story", "links"),
    [
        ("It rained, so the picnic moved indoors.", 1),
        ("Since the stool is broken, the boy falls.", 1),
        ("The boy is so happy.", 0),
        ("The girl is so tired that she sleeps at her desk.", 0),
        ("She has lived here ever since.", 0),
    ],
    ids=["so-joins-clauses", "since-joins-clauses", "so-adverb", "so-that", "ever-since"],
)
def test_so_and_since_are_causal_only_when_they_join_clauses(rules, story, links) -> None:
    """spaCy tags "so"/"since" as a conjunction in the first two and as an adverb in the others."""
    assert rules.measure(story).causal_links == links


def test_hard_cases_shown_rather_than_said(measurer) -> None:
    """A visible cause beside its effect with no connective, a role shown by attire and tools, a feeling
    shown by its signs; and a feeling only stated is not one."""
    shown = measurer.measure(
        "A waiter has tripped over a bag. His tray lies upside down and spaghetti covers a guest's shoes. "
        "A man in a striped shirt with a whistle points at the spot, red-faced, fists clenched."
    )
    covered = {d.dimension for d in shown.dimensions if d.score >= 0.5}
    assert {Dimension.EVENT_CAUSAL_RELATIONSHIP, Dimension.CHARACTER_ROLE, Dimension.MENTAL_STATE} <= covered
    stated = measurer.measure(
        "A woman sits alone. She feels ashamed about yesterday, though her face shows nothing."
    )
    assert stated.mental_states == 0
