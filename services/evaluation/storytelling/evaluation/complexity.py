"""Semantic complexity: a VLM lists the image's visual clues and what they imply; a scorer rates them.

Rule-based scorer "rules/1". Per category d, evidence m_d counts distinct clues: 1 for a clue with an
inference, 0.5 for a bare clue (an entity seen, nothing concluded). Credit saturates,
c_d = 1 - exp(-m_d), so listing many entities cannot stand in for reasoning. The score is the weighted
mean of the credits,

    score = sum_d w_d c_d / sum_d w_d,  in [0, 1],

with higher-order inferences weighted above entity-level ones: event_causal_relationship 3,
mental_state 2, character_relationship 2, and time, location, character_role, event 1 each. An image
with one causal chain (m = 1) thus gains 3 x 0.63 / 11 = 0.17, a bare location clue 0.04.
`Scorer` is the interface a learned discriminator implements to replace these rules.
"""

import math
from dataclasses import dataclass
from typing import Protocol

from storytelling.evaluation.dimensions import DIMENSIONS, Dimension
from storytelling.evaluation.images import EncodedImage
from storytelling.evaluation.jsonout import OutputError, OutputMode, parse_object
from storytelling.evaluation.provenance import Rejected
from storytelling.evaluation.scores import DimensionScore
from storytelling.llm import ChatEngine, ChatMessage, JsonSchema, SamplingParams, TextPart

PROMPT_VERSION = "complexity/1"
PROMPT = """List the visual clues in this image and what a viewer can infer from each, using these \
categories: time, location, character_role, character_relationship, event, event_causal_relationship, \
mental_state.
Reply with only a JSON object of this form, and nothing else:
{"clues": [{"dimension": "<category>", "clue": "<what is visible>", "inference": "<what it tells>"}]}
Use an empty list when the image shows nothing to infer."""

REPAIR = "{prompt}\nYour previous reply was rejected: {errors}. Reply with only the corrected JSON object."

# The reply's shape, for OutputMode.JSON_SCHEMA (engines that constrain decoding: small models); bounded,
# so even a model that never stops by itself ends within max_tokens. parse_clues stays the authority.
SCHEMA = JsonSchema(
    "clues_v1",
    {
        "type": "object",
        "properties": {
            "clues": {
                "type": "array",
                "maxItems": 8,
                "items": {
                    "type": "object",
                    "properties": {
                        "dimension": {"enum": [d.value for d in DIMENSIONS]},
                        "clue": {"type": "string", "minLength": 3, "maxLength": 100},
                        "inference": {"type": "string", "maxLength": 120},
                    },
                    "required": ["dimension", "clue", "inference"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["clues"],
        "additionalProperties": False,
    },
)

WEIGHTS: dict[Dimension, float] = {
    Dimension.TIME: 1.0,
    Dimension.LOCATION: 1.0,
    Dimension.CHARACTER_ROLE: 1.0,
    Dimension.EVENT: 1.0,
    Dimension.CHARACTER_RELATIONSHIP: 2.0,
    Dimension.MENTAL_STATE: 2.0,
    Dimension.EVENT_CAUSAL_RELATIONSHIP: 3.0,
}
BARE_CLUE = 0.5


@dataclass(frozen=True)
class Clue:
    dimension: Dimension
    clue: str
    inference: str = ""


@dataclass(frozen=True)
class ComplexityScore:
    score: float
    by_dimension: list[DimensionScore]
    scorer: str


@dataclass(frozen=True)
class ComplexityReport:
    score: ComplexityScore
    clues: list[Clue]
    raw: str


class Scorer(Protocol):
    name: str

    def score(self, clues: list[Clue]) -> ComplexityScore: ...


class RuleScorer:
    name = "rules/1"

    def score(self, clues: list[Clue]) -> ComplexityScore:
        evidence = dict.fromkeys(DIMENSIONS, 0.0)
        counts = dict.fromkeys(DIMENSIONS, 0)
        seen: set[tuple[Dimension, str]] = set()
        for clue in clues:
            key = (clue.dimension, clue.clue.casefold())  # caseless in every script: "Straße" is "STRASSE"
            if key in seen:
                continue
            seen.add(key)
            evidence[clue.dimension] += 1.0 if clue.inference else BARE_CLUE
            counts[clue.dimension] += 1
        credit = {d: 1.0 - math.exp(-m) for d, m in evidence.items()}
        total = sum(WEIGHTS[d] * credit[d] for d in DIMENSIONS) / sum(WEIGHTS.values())
        return ComplexityScore(
            score=total,
            by_dimension=[DimensionScore(d, credit[d], counts[d]) for d in DIMENSIONS if counts[d]],
            scorer=self.name,
        )


def parse_clues(raw: str) -> list[Clue]:
    value = parse_object(raw)
    items = value.get("clues")
    if set(value) != {"clues"} or not isinstance(items, list):
        raise OutputError(['expected {"clues": [...]} and no other keys'])
    errors, clues = [], []
    known = {d.value for d in DIMENSIONS}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors.append(f"clues[{i}] must be an object")
            continue
        dimension, clue, inference = item.get("dimension"), item.get("clue"), item.get("inference", "")
        if dimension not in known:
            errors.append(f"clues[{i}].dimension {dimension!r} is not one of {', '.join(sorted(known))}")
        if not isinstance(clue, str) or not clue.strip():
            errors.append(f"clues[{i}].clue must be a non-empty string")
        if not isinstance(inference, str):
            errors.append(f"clues[{i}].inference must be a string")
        if not errors:
            clues.append(Clue(Dimension(dimension), " ".join(clue.split()), " ".join(inference.split())))
    if errors:
        raise OutputError(errors)
    return clues


class ComplexityEvaluator:
    def __init__(
        self,
        engine: ChatEngine,
        scorer: Scorer | None = None,
        *,
        max_repairs: int = 1,
        max_tokens: int = 768,
        mode: OutputMode = OutputMode.PARSED,
    ) -> None:
        self.engine = engine
        self.scorer = scorer or RuleScorer()
        self.max_repairs = max_repairs
        self.params = SamplingParams(
            temperature=0.0,
            max_tokens=max_tokens,
            json_schema=SCHEMA if mode is OutputMode.JSON_SCHEMA else None,
        )

    async def evaluate(self, image: EncodedImage, rejected: list[Rejected] | None = None) -> ComplexityReport:
        """Rejected outputs are appended to `rejected` as they happen, so a failure keeps them too."""
        rejected = [] if rejected is None else rejected
        prompt, raws = PROMPT, []
        for _ in range(1 + self.max_repairs):
            message = ChatMessage("user", (image.part(), TextPart(prompt)))
            raw = (await self.engine.chat([message], self.params)).text
            try:
                clues = parse_clues(raw)
            except OutputError as exc:
                raws.append(raw)
                rejected.append(Rejected("invalid_clues", "; ".join(exc.errors), raw))
                prompt = REPAIR.format(prompt=PROMPT, errors="; ".join(exc.errors))
                continue
            return ComplexityReport(self.scorer.score(clues), clues, raw)
        raise OutputError([f"no parseable clue list after {len(raws)} attempts: {raws[-1][:200]!r}"])
