"""Lexical measures on word n-grams: repetition inside a story and distinct-n over a set.

Words are lower-cased runs of letters, digits and apostrophes, so punctuation and case do not make two
phrasings differ. Repetition of a story: the share of its word trigrams that already occurred earlier in
it (0 for a story that never repeats itself, near 1 for a model looping on one phrase). Distinct-n of a
set (Li et al., 2016): distinct word n-grams over all word n-grams of all its stories, so a set of
copies, or of stories sharing one phrasing, scores low.
"""

import re
from collections.abc import Iterable, Sequence

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
REPETITION_N = 3


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def repetition(text: str, n: int = REPETITION_N) -> float:
    grams = ngrams(words(text), n)
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def distinct_n(texts: Iterable[str], n: int = 2) -> float:
    """0.0 for a set without any n-gram (every story shorter than n words)."""
    total, seen = 0, set()
    for text in texts:
        grams = ngrams(words(text), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0
