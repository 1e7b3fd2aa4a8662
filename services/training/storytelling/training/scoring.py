"""Stories measured by the EvaluationService over gRPC: the training pipeline keeps no copy of an evaluator.

One EvaluateSet call per set returns each story's text-side measures (dimensions covered, repetition,
words), the set's diversity and distinct-2, and each story's novelty against a reference (the pool), whose
complement is the story's largest cosine similarity to any reference story. Items that carry an image
also get alignment and complexity, which report NOT_RUN unless the service has a judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from storytelling.client import AsyncEvaluationClient, AsyncRenderClient
from storytelling.v1 import common_pb2, evaluation_pb2, render_pb2

OK = common_pb2.EvaluatorStatus.STATE_OK


@dataclass(frozen=True)
class StoryMeasures:
    dimensions_covered: int
    repetition: float
    words: int
    # Cosine similarity to the nearest reference story (1.0: a copy); None without a reference.
    max_similarity: float | None = None
    # Image-side scores in [0, 1], None where the evaluator did not run.
    alignment: float | None = None
    complexity: float | None = None


@dataclass(frozen=True)
class SetMeasures:
    stories: list[StoryMeasures]
    # Set-level numbers; None for a set of fewer than two stories.
    diversity: float | None = None
    distinct_2: float | None = None
    vendi_score: float | None = None
    # Why alignment or complexity did not run ("" when they ran or no image was given).
    image_side: str = ""


async def measure(
    client: AsyncEvaluationClient,
    stories: Sequence[str],
    *,
    reference: Sequence[str] = (),
    images: Sequence[common_pb2.Image] | None = None,
) -> SetMeasures:
    """Measures non-empty stories (the service refuses empty ones); results follow `stories` order."""
    evaluators = [evaluation_pb2.EVALUATOR_TEXT_MEASURES]
    if len(stories) >= 2:
        evaluators.append(evaluation_pb2.EVALUATOR_DIVERSITY)
    if images is not None:
        evaluators += [evaluation_pb2.EVALUATOR_ALIGNMENT, evaluation_pb2.EVALUATOR_COMPLEXITY]
    request = evaluation_pb2.EvaluateSetRequest(
        items=[
            evaluation_pb2.EvaluationItem(id=str(i), story=story, image=images[i] if images else None)
            for i, story in enumerate(stories)
        ],
        evaluators=evaluators,
        diversity=evaluation_pb2.DiversityOptions(reference=list(reference)),
    )
    items: dict[int, evaluation_pb2.ItemEvaluation] = {}
    summary = evaluation_pb2.SetSummary()
    async for event in client.evaluate_set(request):
        if event.HasField("item"):
            items[int(event.item.item_id)] = event.item
        else:
            summary = event.summary
    diversity = summary.diversity if summary.HasField("diversity") else None
    novelty = list(diversity.per_story_novelty) if diversity is not None else []
    measured = []
    for i in range(len(stories)):
        item = items[i]
        text = item.text_measures
        if text.status.state != OK:
            raise RuntimeError(f"text-side measures did not run: {text.status.reason}")
        measured.append(
            StoryMeasures(
                dimensions_covered=text.dimensions_covered,
                repetition=text.repetition,
                words=text.words,
                max_similarity=1.0 - novelty[i] if novelty else None,
                alignment=item.alignment.score if item.alignment.status.state == OK else None,
                complexity=item.complexity.score if item.complexity.status.state == OK else None,
            )
        )
    return SetMeasures(
        stories=measured,
        diversity=diversity.diversity if diversity is not None else None,
        distinct_2=diversity.distinct_2 if diversity is not None else None,
        vendi_score=diversity.vendi_score if diversity is not None else None,
        image_side=_image_side(summary) if images is not None else "",
    )


async def max_similarity(
    client: AsyncEvaluationClient, stories: Sequence[str], reference: Sequence[str]
) -> list[float]:
    """Each story's cosine similarity to its nearest reference story (the memorisation check)."""
    result = await client.diversity(stories, evaluation_pb2.DiversityOptions(reference=list(reference)))
    return [1.0 - n for n in result.per_story_novelty]


def _image_side(summary: evaluation_pb2.SetSummary) -> str:
    reasons = [
        f"{name}: {status.reason}"
        for name, status in (
            ("alignment", summary.alignment_status),
            ("complexity", summary.complexity_status),
        )
        if status.state != OK
    ]
    return "; ".join(reasons)


async def paint(client: AsyncRenderClient, stories: Sequence[str], seed: int) -> list[common_pb2.Image]:
    """One image per story from the render service's default painter, for the image-side evaluators."""
    responses = await asyncio.gather(
        *(client.render(render_pb2.RenderRequest(prompt=s, seed=seed + i)) for i, s in enumerate(stories))
    )
    return [r.image for r in responses]
