"""Key-point extraction: an LLM lists visually checkable statements of a story in the seven categories.

The output is parsed strictly and every key point validated; a rejected output is sent back with the
errors for at most `max_repairs` more attempts, and every attempt is kept for audit.

Two output modes. `parsed` (the default) lets the model write free text and relies on that parsing,
validation and repair: it works with every engine. `json_schema` also asks the
engine to constrain decoding to `SCHEMA` (vLLM's structured outputs, through the OpenAI
`response_format`), so even a small model writes the seven keys with lists of capitalised sentences ending
in a full stop; validation and repair still run, for what a schema cannot say (a key point starting with
a pronoun). The schema caps each category at three key points of at most 20 words. Provenance tells
the modes apart: the schema's name joins the prompt version.
"""

import re
from dataclasses import dataclass, field
from typing import Any

from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.jsonout import OutputError, OutputMode, parse_object
from storytelling.llm import ChatEngine, ChatMessage, JsonSchema, SamplingParams

PROMPT_VERSION = "keypoints/1"


SYSTEM = (
    "You turn a one-moment story into the key points an illustration of it must show, so that a "
    "judge can check the picture one statement at a time."
)

USER = """Story:
\"\"\"{story}\"\"\"

List the key points a faithful illustration of this story must show, in these seven categories:
- time: a special moment that can be seen (Christmas decorations, a clock showing 3 AM)
- location: where the scene takes place
- character_role: what a character is (a nurse, a referee)
- character_relationship: how characters are related (a mother and her son)
- event: what is happening
- event_causal_relationship: a cause and its visible effect
- mental_state: how a character feels, as shown by face or posture

Rules:
- Each key point is one complete sentence that names its subject and can be checked by looking at \
the picture, for example "There is a boy holding a box of cookies."
- Never start a key point with a pronoun (he, she, it, they): name who or what it is about.
- A category may have no key points: give it an empty list.
- Reply with only a JSON object with these seven keys, each a list of sentences, and nothing else."""

REPAIR = (
    "Your reply was rejected: {errors}. Reply again with only the corrected JSON object: the seven "
    "category keys, each a list of complete sentences."
)

MIN_WORDS, MAX_WORDS = 3, 40
# What the schema can enforce of `sentence_errors`: a capital first, words without inner sentence ends,
# a full stop or exclamation mark last. Fewer words than validation allows, and at most three per
# category, so that a small model that repeats a sentence until its list is full stays well inside
# max_tokens (7 x 3 sentences of at most 20 words) and takes seconds, not minutes, on a CPU.
SCHEMA_MAX_WORDS, SCHEMA_MAX_PER_CATEGORY = 20, 3
_CHAR = r'[^ \t\n.!?"\\]'  # a character of a word: no space, sentence end, quote or backslash
SENTENCE_PATTERN = rf"^[A-Z]{_CHAR}*( {_CHAR}+){{{MIN_WORDS - 1},{SCHEMA_MAX_WORDS - 1}}}[.!]$"
SCHEMA = JsonSchema(
    "key_points_v1",
    {
        "type": "object",
        "properties": {
            d.value: {
                "type": "array",
                "items": {"type": "string", "pattern": SENTENCE_PATTERN},
                "maxItems": SCHEMA_MAX_PER_CATEGORY,
            }
            for d in DIMENSIONS
        },
        "required": [d.value for d in DIMENSIONS],
        "additionalProperties": False,
    },
)

_PRONOUNS = frozenset("he she it they his her its their him them this that these those i we you".split())
_ABBREVIATIONS = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Prof)\.")
_SENTENCE_BREAK = re.compile(r"[.!?][\"')\]]*\s+\S")


@dataclass(frozen=True)
class KeyPointText:
    dimension: Dimension
    text: str


@dataclass(frozen=True)
class Attempt:
    raw: str
    errors: list[str]


@dataclass(frozen=True)
class Extraction:
    key_points: list[KeyPointText]
    raw: str  # the accepted output
    attempts: list[Attempt] = field(default_factory=list)  # rejected outputs, in order


class ExtractionError(RuntimeError):
    """Every attempt was rejected."""

    def __init__(self, attempts: list[Attempt]) -> None:
        super().__init__(
            f"key-point extraction failed after {len(attempts)} attempts: " + "; ".join(attempts[-1].errors)
        )
        self.attempts = attempts


def sentence_errors(text: str) -> list[str]:
    """Why `text` is not one complete sentence naming its subject (empty when it is)."""
    errors = []
    words = text.split()
    if not MIN_WORDS <= len(words) <= MAX_WORDS:
        errors.append(f"has {len(words)} words, not {MIN_WORDS} to {MAX_WORDS}")
    if not text[:1].isupper():
        errors.append("does not start with a capital letter")
    if not text.endswith((".", "!")):
        errors.append("does not end with a full stop")
    if _SENTENCE_BREAK.search(_ABBREVIATIONS.sub("", text)[:-1]):
        errors.append("is more than one sentence")
    if words and words[0].lower().strip("'\",") in _PRONOUNS:
        errors.append(f"starts with the pronoun {words[0]!r} instead of naming its subject")
    return errors


def parse_key_points(raw: str) -> list[KeyPointText]:
    """Key points of one extractor output; raises OutputError listing every problem."""
    value = parse_object(raw)
    errors: list[str] = []
    points: list[KeyPointText] = []
    seen: set[str] = set()
    known = {d.value for d in DIMENSIONS}
    for key in value:
        if key not in known:
            errors.append(f"unknown category {key!r} (use {', '.join(sorted(known))})")
    for dimension in DIMENSIONS:
        items: Any = value.get(dimension.value, [])
        if not isinstance(items, list):
            errors.append(f"{dimension.value} must be a list of sentences")
            continue
        for i, item in enumerate(items):
            if not isinstance(item, str):
                errors.append(f"{dimension.value}[{i}] must be a string")
                continue
            text = " ".join(item.split())
            problems = sentence_errors(text)
            errors.extend(f"{dimension.value}[{i}] {text!r} {p}" for p in problems)
            if not problems and text.lower() not in seen:
                seen.add(text.lower())
                points.append(KeyPointText(dimension, text))
    if not errors and not points:
        errors.append("no key points at all: the story must have something an illustration shows")
    if errors:
        raise OutputError(errors)
    return points


class KeyPointExtractor:
    """Greedy extraction with at most `max_repairs` repair requests after the first attempt; `mode`
    json_schema constrains every attempt to SCHEMA (the engine must support it)."""

    def __init__(
        self,
        llm: ChatEngine,
        *,
        max_repairs: int = 1,
        max_tokens: int = 768,
        mode: OutputMode = OutputMode.PARSED,
    ) -> None:
        self.llm = llm
        self.max_repairs = max_repairs
        self.mode = mode
        self.params = SamplingParams(
            temperature=0.0,
            max_tokens=max_tokens,
            json_schema=SCHEMA if mode is OutputMode.JSON_SCHEMA else None,
        )

    @property
    def prompt_version(self) -> str:
        """What provenance records of the request: the prompt's version, and the schema's where decoding
        is constrained (the same prompt under a schema gives different outputs)."""
        schema = self.params.json_schema
        return PROMPT_VERSION if schema is None else f"{PROMPT_VERSION}+{schema.name}"

    async def extract(self, story: str) -> Extraction:
        messages = [ChatMessage("system", SYSTEM), ChatMessage("user", USER.format(story=story.strip()))]
        rejected: list[Attempt] = []
        for _ in range(1 + self.max_repairs):
            raw = (await self.llm.chat(messages, self.params)).text
            try:
                return Extraction(parse_key_points(raw), raw, rejected)
            except OutputError as exc:
                rejected.append(Attempt(raw, exc.errors))
                messages += [
                    ChatMessage("assistant", raw),
                    ChatMessage("user", REPAIR.format(errors="; ".join(exc.errors))),
                ]
        raise ExtractionError(rejected)
