"""Cleaning and checking model output before it becomes a story.

Cleaning removes what small models wrap around a story (preambles, markdown, quotes, sign-offs).
Checks reject outputs a painter cannot use (empty, too short, truncated, echoing the prompt, repetitive,
multi-moment, dialogue), and the storyteller regenerates. Most rejections can be salvaged: a truncated
output cut back to its last complete sentence, an output without the sentences that repeat the prompt
or each other, a multi-moment or dialogue output (still a scene). Weak models (SmolLM2-135M) rarely pass
every check, so once the attempts run out the storyteller returns the first salvageable output, labelled
as salvaged with the reason (see core.py). Empty, too short, or nothing left after salvage are never
returned.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

MIN_WORDS = 20

_PREAMBLE = re.compile(
    r"^\s*(?:(?:sure|certainly|of course|okay|ok|absolutely)\b[^\n]*?[!.:]\s*)?"
    r"(?:(?:here(?:'s| is)|below is|this is)\b[^\n:]*:|(?:title|story|description|image description)"
    r"\s*:[^\n]*\n|(?:title|story|description)\s*:)\s*",
    re.IGNORECASE,
)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+.*$", re.MULTILINE)
_BOLD_TITLE = re.compile(r"^\s*(\*\*|__)[^*_\n]{1,80}\1\s*$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|_)(?=\S)(.+?)(?<=\S)\1")
_BULLET = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+", re.MULTILINE)
_FENCE = re.compile(r"^\s*```\w*\s*$", re.MULTILINE)
_SIGN_OFF = re.compile(
    r"\n\s*(?:i hope|let me know|feel free|this (?:image|scene|description|story) )[^\n]*$", re.IGNORECASE
)
_QUOTES = {'"': '"', "\u201c": "\u201d", "'": "'"}

# One of these alone narrates time passing; "then" is common enough in scene descriptions
# ("a then-empty street" is rare, "and then" is not) that it takes two to reject.
_SEQUENCE = re.compile(
    r"\b(after that|afterwards|afterward|later on|moments later|minutes later|hours later|days later|"
    r"the next (?:day|morning|evening|week)|the following (?:day|morning)|eventually|in the end|"
    r"soon after|shortly after|once upon a time|at last)\b",
    re.IGNORECASE,
)
_THEN = re.compile(r"\b(then|later|finally)\b", re.IGNORECASE)
_SPEECH = re.compile(r"[\"\u201c\u201d][^\"\u201c\u201d]{2,}?[\"\u201d\u201c]")
_SPEECH_VERB = re.compile(
    r"\b(says|said|asks|asked|shouts|shouted|yells|yelled|whispers|whispered|replies)\b"
)


_SENTENCE_END = re.compile(r"[.!?][\"'\u201d)]?(?=\s|$)")
# A sentence that shares this many consecutive words with the prompt repeats it (small models echo
# their instructions: "Invent a new scene with different people, place and event...").
ECHO_WORDS = 6
# Sentences about the task rather than the picture.
_META = re.compile(
    r"\b(?:(?:the )?stor(?:y|ies) (?:above|below)|the examples?\b|the prompt|the rules|the following (?:is|are)"
    r"|write (?:a|the|your|one) |invent (?:a|the) |(?:a |the )?description of (?:a|the|this) storytelling)",
    re.IGNORECASE,
)
_WORD = re.compile(r"[a-z0-9']+")


@dataclass(frozen=True)
class Rejection:
    # "empty", "truncated", "too_short", "prompt_echo", "repetitive", "multi_moment", "dialogue"
    reason: str
    detail: str
    text: str
    # What could be returned if nothing better comes: the text, or the text cut to its complete sentences
    # without prompt echoes and repeats; None when nothing usable is left.
    salvage: str | None = None


def clean(text: str) -> str:
    """Strips preambles, markdown and wrapping quotes; joins the rest into plain paragraphs."""
    text = _FENCE.sub("", text.strip())
    text = _PREAMBLE.sub("", text, count=1)
    text = _HEADING.sub("", text)
    text = _BOLD_TITLE.sub("", text)
    text = _EMPHASIS.sub(r"\2", text)
    text = _BULLET.sub("", text)
    text = _SIGN_OFF.sub("", text)
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]
    text = "\n\n".join(paragraphs)
    if len(text) > 1 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner:  # one quoted story, not a story ending in speech
            text = inner.strip()
    return text


def check(text: str, finish_reason: str, prompt: str = "") -> Rejection | None:
    """The first reason `text` (already cleaned) cannot be a story, or None. `prompt` is the text the
    model was given, to recognise sentences that repeat it."""
    if not text:
        return Rejection("empty", "the model returned no text after cleaning", text)
    words = len(text.split())
    if finish_reason == "length":
        cut = _full_sentences(text)
        return Rejection(
            "truncated", "the model hit max_tokens before finishing", text, _salvage(cut, prompt)
        )
    if words < MIN_WORDS:
        return Rejection("too_short", f"{words} words, fewer than {MIN_WORDS}", text)
    sentences = _sentences(text)
    echoes = [s for s in sentences if _echoes(s, prompt)]
    if echoes:
        kept = " ".join(s for s in sentences if s not in echoes)
        detail = f"{len(echoes)} of {len(sentences)} sentence(s) repeat the prompt or talk about the task"
        return Rejection("prompt_echo", detail, text, _salvage(kept, prompt))
    unique = list(dict.fromkeys(sentences))
    if len(sentences) - len(unique) >= 2:
        detail = f"{len(sentences) - len(unique)} repeated sentence(s) of {len(sentences)}"
        return Rejection("repetitive", detail, text, _salvage(" ".join(unique), prompt))
    markers = [m.group(0).lower() for m in _SEQUENCE.finditer(text)]
    thens = [m.group(0).lower() for m in _THEN.finditer(text)]
    if markers or len(thens) >= 2:
        found = ", ".join(dict.fromkeys(markers + thens))
        return Rejection("multi_moment", f"narrates a sequence of moments ({found})", text, text)
    speech = _SPEECH.findall(text)
    quoted = sum(len(s) for s in speech)
    if len(speech) >= 2 or quoted > 0.2 * len(text) or (speech and _SPEECH_VERB.search(text)):
        detail = f"{len(speech)} quoted utterance(s), {quoted} of {len(text)} chars"
        return Rejection("dialogue", detail, text, text)
    return None


def _salvage(text: str, prompt: str) -> str | None:
    """`text` if it passes, else what its own rejection salvages; None when too little is left."""
    if len(text.split()) < MIN_WORDS:
        return None
    inner = check(text, "stop", prompt)
    return text if inner is None else inner.salvage


def _echoes(sentence: str, prompt: str) -> bool:
    if _META.search(sentence):
        return True
    words = _WORD.findall(sentence.lower())
    if not prompt or len(words) < ECHO_WORDS:
        return False
    shingles = _prompt_shingles(prompt)
    return any(tuple(words[i : i + ECHO_WORDS]) in shingles for i in range(len(words) - ECHO_WORDS + 1))


@functools.lru_cache(maxsize=32)
def _prompt_shingles(prompt: str) -> frozenset[tuple[str, ...]]:
    words = _WORD.findall(prompt.lower())
    return frozenset(tuple(words[i : i + ECHO_WORDS]) for i in range(len(words) - ECHO_WORDS + 1))


def _sentences(text: str) -> list[str]:
    """Sentences of `text`, whitespace-normalised, in order (a trailing fragment counts as one)."""
    found, start = [], 0
    for end in _SENTENCE_END.finditer(text):
        found.append(" ".join(text[start : end.end()].split()))
        start = end.end()
    if text[start:].strip():
        found.append(" ".join(text[start:].split()))
    return [s for s in found if s]


def _full_sentences(text: str) -> str:
    """`text` up to its last sentence end ("" if it has none)."""
    ends = list(_SENTENCE_END.finditer(text))
    return text[: ends[-1].end()].strip() if ends else ""
