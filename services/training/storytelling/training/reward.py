"""The DPO reward: one number in [0, 1] per sampled story, from the story checks and the evaluation service.

Components, each in [0, 1]:
- format: the story service's own checks (`storytelling.story.postprocess`) on the cleaned output: 1 when
  accepted as is, 0.5 when only salvageable (multi-moment, dialogue, repetitive, truncated but cut to
  whole sentences), 0 when unusable (empty, too short, truncated with too little left). An unusable
  story scores 0 overall, whatever its other components.
- coverage: reasoning dimensions covered (text-side measures) / 7.
- novelty: 1 up to a cosine similarity of 0.6 to the nearest pool story, falling linearly to 0 at 0.95,
  so a copy or close paraphrase of a training story is penalised.
- repetition: 1 - repeated-trigram share / 0.2 (clipped): a model looping on a phrase scores 0.
- length: 1 within the prompt's 60-170 words, falling linearly to 0 at 20 and at 300 words.
- alignment, complexity: the image evaluators' scores, when a painter and a judge are configured.
The reward is the weighted mean of the components that were measured.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from storytelling.story.postprocess import check, clean
from storytelling.training.scoring import StoryMeasures

DIMENSIONS = 7
NOVEL_UP_TO, COPY_FROM = 0.6, 0.95
REPETITION_ZERO = 0.2
LENGTH_OK, LENGTH_ZERO = (60, 170), (20, 300)


@dataclass(frozen=True)
class RewardWeights:
    format: float = 1.0
    coverage: float = 1.0
    novelty: float = 0.5
    repetition: float = 0.5
    length: float = 0.5
    alignment: float = 1.0
    complexity: float = 1.0


@dataclass(frozen=True)
class FormatCheck:
    score: float
    # The story as the story service would return it: the cleaned text, or its salvage; "" when unusable.
    story: str
    reason: str = ""


@dataclass(frozen=True)
class Reward:
    score: float
    components: dict[str, float]


def format_check(raw: str, finish_reason: str) -> FormatCheck:
    text = clean(raw)
    rejection = check(text, finish_reason)
    if rejection is None:
        return FormatCheck(1.0, text)
    if rejection.salvage:
        return FormatCheck(0.5, rejection.salvage, rejection.reason)
    return FormatCheck(0.0, "", rejection.reason)


def reward(
    fmt: FormatCheck, measures: StoryMeasures | None, weights: RewardWeights = RewardWeights()
) -> Reward:
    if fmt.score == 0.0 or measures is None:
        return Reward(0.0, {"format": fmt.score})
    components = {
        "format": fmt.score,
        "coverage": measures.dimensions_covered / DIMENSIONS,
        "repetition": 1.0 - _clip(measures.repetition / REPETITION_ZERO),
        "length": _window(measures.words, LENGTH_OK, LENGTH_ZERO),
    }
    if measures.max_similarity is not None:
        components["novelty"] = 1.0 - _clip(
            (measures.max_similarity - NOVEL_UP_TO) / (COPY_FROM - NOVEL_UP_TO)
        )
    if measures.alignment is not None:
        components["alignment"] = measures.alignment
    if measures.complexity is not None:
        components["complexity"] = measures.complexity
    weight = asdict(weights)
    total = sum(weight[name] for name in components)
    return Reward(sum(weight[name] * value for name, value in components.items()) / total, components)


def _clip(value: float) -> float:
    return min(max(value, 0.0), 1.0)


def _window(value: float, ok: tuple[int, int], zero: tuple[int, int]) -> float:
    if value < ok[0]:
        return _clip((value - zero[0]) / (ok[0] - zero[0]))
    if value > ok[1]:
        return _clip((zero[1] - value) / (zero[1] - ok[1]))
    return 1.0
