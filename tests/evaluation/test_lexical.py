"""Repetition inside a story and distinct-2 over a set, on word n-grams."""

import pytest

from storytelling.evaluation.lexical import distinct_n, repetition, words


def test_words_ignore_case_and_punctuation_but_keep_apostrophes():
    assert words("The girl's KITE, caught -- in the tree!") == [
        "the",
        "girl's",
        "kite",
        "caught",
        "in",
        "the",
        "tree",
    ]


def test_repetition_is_the_share_of_trigrams_seen_before():
    assert repetition("a boy holds a red kite in the park") == 0.0
    # 7 trigrams; the last, "the cat sat", repeats the first.
    assert repetition("the cat sat on the mat the cat sat") == pytest.approx(1 / 7)
    looping = " ".join(["invent a story that"] * 20)
    assert repetition(looping) > 0.9
    assert repetition("too short") == 0.0


def test_distinct_2_falls_for_copies_and_shared_phrasing():
    different = ["a boy flies a kite", "an old man feeds pigeons"]
    assert distinct_n(different) == 1.0
    assert distinct_n(different * 2) == pytest.approx(0.5)
    assert distinct_n(["one", "two"]) == 0.0
