"""Diversity on built story sets with the real all-MiniLM-L6-v2 embedder."""

from storytelling.evaluation.diversity import diversity

COOKIES = "A boy on a tipping stool steals cookies while his mother, lost in thought, lets the sink overflow."
PARAPHRASES = [
    COOKIES,
    "While his distracted mother lets the kitchen sink overflow, a boy on a wobbling stool takes cookies.",
    "A little boy grabs cookies from the jar on a tipping stool as his dreamy mother lets the sink run over.",
    "The mother stares away while the sink overflows and her son, on a tilting stool, steals cookies.",
]
DISTINCT = [
    COOKIES,
    "At midnight on New Year's Eve, a referee slips on confetti in a packed ice-hockey arena.",
    "A nurse in a rural clinic in Kenya laughs as a goat eats a patient's prescription.",
    "On the last day of school a teacher finds her classroom filled with paper cranes.",
]


def test_near_duplicates_score_low_and_distinct_topics_high(embedder) -> None:
    near = diversity(embedder.encode(PARAPHRASES), k=2)
    far = diversity(embedder.encode(DISTINCT), k=2)
    assert near.diversity < 0.35 < 0.7 < far.diversity
    assert far.vendi_score > near.vendi_score


def test_a_paraphrase_of_an_exemplar_is_not_novel(embedder) -> None:
    report = diversity(embedder.encode(DISTINCT), k=1, reference=embedder.encode(PARAPHRASES[1:]))
    assert report.per_story_novelty[0] < 0.35  # the cookie story paraphrases the exemplars
    assert min(report.per_story_novelty[1:]) > 0.7
