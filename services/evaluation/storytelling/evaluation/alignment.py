"""Story-image alignment: the judge checks each key point of the story against the image.

Score: mean judge score over the story's own key points, overall and per category. Control key points,
drawn from other stories (`controls`), should be answered no; the share the judge answers yes to
(score > 0.5) is its false-yes rate, reported beside the score so a yes-biased judge is visible. Every
key point is judged concurrently; the engine bounds how many requests are in flight.
"""

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from storytelling.evaluation.controls import ControlPoint
from storytelling.evaluation.dimensions import DIMENSIONS
from storytelling.evaluation.images import EncodedImage
from storytelling.evaluation.judge import Judge, Verdict
from storytelling.evaluation.keypoints import Extraction, KeyPointExtractor, KeyPointText
from storytelling.evaluation.scores import DimensionScore


@dataclass(frozen=True)
class JudgedKeyPoint:
    key_point: KeyPointText
    verdict: Verdict
    control_of: str | None = None  # the story a control key point comes from

    @property
    def is_control(self) -> bool:
        return self.control_of is not None


@dataclass(frozen=True)
class AlignmentReport:
    score: float
    by_dimension: list[DimensionScore]
    key_points: list[JudgedKeyPoint]
    false_yes_rate: float | None
    extraction: Extraction


def summarize(extraction: Extraction, judged: list[JudgedKeyPoint]) -> AlignmentReport:
    own = [j for j in judged if not j.is_control]
    controls = [j for j in judged if j.is_control]
    by_dimension = []
    for dimension in DIMENSIONS:
        scores = [j.verdict.score for j in own if j.key_point.dimension == dimension]
        if scores:
            by_dimension.append(DimensionScore(dimension, sum(scores) / len(scores), len(scores)))
    return AlignmentReport(
        score=sum(j.verdict.score for j in own) / len(own),
        by_dimension=by_dimension,
        key_points=judged,
        false_yes_rate=sum(j.verdict.score > 0.5 for j in controls) / len(controls) if controls else None,
        extraction=extraction,
    )


class AlignmentEvaluator:
    def __init__(self, extractor: KeyPointExtractor, judge: Judge) -> None:
        self.extractor = extractor
        self.judge = judge

    async def extract(self, story: str) -> Extraction:
        return await self.extractor.extract(story)

    async def evaluate(
        self, image: EncodedImage, extraction: Extraction, controls: Sequence[ControlPoint] = ()
    ) -> AlignmentReport:
        asked = [(kp, None) for kp in extraction.key_points]
        asked += [(c.key_point, c.source_story_id) for c in controls]
        verdicts = await asyncio.gather(*(self.judge.judge(image, kp.text) for kp, _ in asked))
        judged = [
            JudgedKeyPoint(kp, verdict, source) for (kp, source), verdict in zip(asked, verdicts, strict=True)
        ]
        return summarize(extraction, judged)
