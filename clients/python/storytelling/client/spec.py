"""Builds a `JobSpec` from plain Python values (what the CLI flags and most scripts have)."""

from __future__ import annotations

from collections.abc import Iterable

from storytelling.api import vocabulary
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2, story_pb2


def job_spec(
    items: int,
    *,
    mode: str = "",
    pool: str = "",
    engine: str = "",
    theme: str = "",
    temperature: float | None = None,
    max_tokens: int | None = None,
    max_attempts: int = 0,
    painter: str = "",
    width: int = 0,
    height: int = 0,
    steps: int = 0,
    evaluators: Iterable[str] = (),
    seed: int | None = None,
    name: str = "",
    skip_render: bool = False,
    skip_evaluation: bool = False,
) -> pipeline_pb2.JobSpec:
    """Empty strings and zeros leave the choice to the orchestrator's defaults.

    Unknown mode or evaluator names raise ValueError here; painter, engine and pool names are checked by
    the services, which know what they serve.
    """
    sampling = common_pb2.SamplingParams()
    if temperature is not None:
        sampling.temperature = temperature
    if max_tokens is not None:
        sampling.max_tokens = max_tokens
    return pipeline_pb2.JobSpec(
        items=items,
        story=story_pb2.StoryRequestOptions(
            mode=vocabulary.parse(vocabulary.StoryMode, mode) if mode else common_pb2.STORY_MODE_UNSPECIFIED,
            pool=pool,
            engine=engine,
            theme=theme,
            sampling=sampling,
            max_attempts=max_attempts,
        ),
        render=render_pb2.RenderRequest(painter=painter, width=width, height=height, steps=steps),
        evaluators=[vocabulary.parse(vocabulary.Evaluator, e) for e in evaluators],
        seed=seed,
        name=name,
        skip_render=skip_render,
        skip_evaluation=skip_evaluation,
    )


def evaluation_item(item_id: str, story: str, image: bytes | None = None) -> evaluation_pb2.EvaluationItem:
    """An item for EvaluationService; the image format is detected from its magic bytes."""
    item = evaluation_pb2.EvaluationItem(id=item_id, story=story)
    if image is not None:
        item.image.data = image
        item.image.format = image_format(image)
    return item


def image_format(data: bytes) -> common_pb2.ImageFormat:
    if data.startswith(b"\x89PNG"):
        return common_pb2.IMAGE_FORMAT_PNG
    if data.startswith(b"\xff\xd8"):
        return common_pb2.IMAGE_FORMAT_JPEG
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return common_pb2.IMAGE_FORMAT_WEBP
    raise ValueError("not a PNG, JPEG or WebP image")
