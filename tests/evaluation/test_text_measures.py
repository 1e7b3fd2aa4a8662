"""Text-side measures with spaCy en_core_web_sm and the embedder (story text only)."""

import pytest

from storytelling.evaluation import lexicon
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
        ("It rained; so we stayed in.", 1),
    ],
    ids=[
        "so-joins-clauses",
        "since-joins-clauses",
        "so-adverb",
        "so-that",
        "ever-since",
        "so-after-semicolon",
    ],
)
def test_so_and_since_are_causal_only_when_they_join_clauses(rules, story, links) -> None:
    """spaCy tags "so"/"since" as a subordinating conjunction in the first two, as a coordinating one
    after a semicolon, and as an adverb in the others."""
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


def test_each_connective_joining_clauses_is_one_link(rules) -> None:
    result = rules.measure("Because it rained, the game stopped, so the fans left.")
    assert (result.causal_links, result.events) == (2, 3)  # because, so; rained, stopped, left


@pytest.mark.parametrize(
    ("story", "links"),
    [
        ("The vase has shattered.", 1),
        ("The cover has ripped.", 1),
        ("The milk spills and the floor is wet.", 1),
        ("Her hat is knocked off by a ball.", 1),
        ("A glass lies broken.", 0),
        ("The vase shattered.", 0),
    ],
    ids=[
        "perfect-shattered",
        "perfect-ripped",
        "two-traces",
        "one-trace-tied-by-by",
        "one-trace-alone",
        "simple-past",
    ],
)
def test_a_cause_is_shown_by_two_traces_a_linking_word_or_the_perfect_not_by_one_trace_alone(
    rules, story, links
) -> None:
    """A change in the simple past is an event, not yet a result in the frame: only "has shattered" is."""
    assert rules.measure(story).causal_links == links


def test_named_people_times_and_places_count_as_cues(rules) -> None:
    result = rules.measure("Mary and John smile at midnight in London.")
    counts = {d.dimension: d.count for d in result.dimensions}
    assert result.characters == 2  # two PERSON entities
    assert counts[Dimension.TIME] == 2  # "midnight", a time noun and a TIME entity
    assert counts[Dimension.LOCATION] == 1  # London, a GPE entity
    assert counts[Dimension.EVENT_CAUSAL_RELATIONSHIP] == 0


def test_a_name_that_is_a_relation_word_is_one_character_and_a_relationship_cue(rules) -> None:
    """spaCy reads "Grandma" as a PERSON entity and a proper noun: one person, named by her relation."""
    result = rules.measure("Grandma hugs the boy.")
    assert result.characters == 2  # Grandma, the boy
    assert {d.dimension: d.count for d in result.dimensions}[Dimension.CHARACTER_RELATIONSHIP] == 1


def test_having_and_seeming_are_not_events(rules) -> None:
    assert rules.measure("The boy has a dog and seems happy.").events == 0


@pytest.mark.parametrize(
    ("story", "states"),
    [("The boy fears the dog.", 1), ("He smiles.", 1), ("She smiles and frowns, and the boy is angry.", 3)],
    ids=["inflected-emotion-word", "smile-once", "three-words"],
)
def test_each_emotion_word_or_sign_is_one_mental_state(rules, story, states) -> None:
    """The lemma finds "fears"; "smiles" is both an emotion word and a sign, and one smile is one cue."""
    assert rules.measure(story).mental_states == states


def test_a_role_shown_by_attire_named_in_two_words(rules) -> None:
    result = rules.measure("A man in a white coat checks the chart.")
    assert {d.dimension: d.count for d in result.dimensions}[Dimension.CHARACTER_ROLE] == 1


@pytest.mark.parametrize(
    ("story", "cues"),
    [
        ("The identical twins wear matching coats.", 3),  # twin, identical, matching
        ("The two girls have the same freckles.", 1),
        ("The two sisters walk holding hands.", 2),  # sister, holding hands
        ("The couple walk holding hands, a wedding ring on her finger.", 3),
    ],
    ids=["resemblance-and-matching-clothes", "same-freckles", "holding-hands", "wedding-ring"],
)
def test_relationships_shown_by_resemblance_clothes_rings_and_gestures_add_up(rules, story, cues) -> None:
    """The phrases match lemmas: "the same freckles" and "holding hands" once never matched."""
    counts = {d.dimension: d.count for d in rules.measure(story).dimensions}
    assert counts[Dimension.CHARACTER_RELATIONSHIP] == cues


def test_method_names_the_embedder_only_when_there_is_one(embedder) -> None:
    """The method is the provenance stored with every result, so it must say whether prototypes were used."""
    assert TextMeasurer(embedder).method == "rules+prototypes/2 (spacy:en_core_web_sm, all-MiniLM-L6-v2)"
    assert TextMeasurer().method == "rules+prototypes/2 (spacy:en_core_web_sm)"


def test_repetition_is_measured_on_the_story(rules) -> None:
    assert rules.measure("The dog barks. The dog barks. The dog barks.").repetition == pytest.approx(4 / 7)


def test_a_sentence_that_is_a_prototype_is_certain_and_similarity_never_lowers_the_rules(
    measurer, rules
) -> None:
    prototype = lexicon.PROTOTYPES[Dimension.TIME][0]
    with_embedder = {d.dimension: d.score for d in measurer.measure(prototype).dimensions}
    alone = {d.dimension: d.score for d in rules.measure(prototype).dimensions}
    assert with_embedder[Dimension.TIME] == pytest.approx(1.0) and alone[Dimension.TIME] < 0.99
    for story in (PLAIN, RICH):
        with_embedder = measurer.measure(story).dimensions
        alone = rules.measure(story).dimensions
        for combined, rule in zip(with_embedder, alone, strict=True):
            assert rule.score - 1e-9 <= combined.score <= 1.0
