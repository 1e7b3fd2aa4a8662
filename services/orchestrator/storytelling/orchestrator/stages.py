"""What the orchestrator needs from each stage, independent of how it is reached.

`clients` implements these protocols over gRPC; tests and benchmarks implement them in process.
Implementations raise `storytelling.runtime.errors` exceptions: Unavailable, DeadlineExceeded and
ResourceExhausted are retried, anything else fails the item at once.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2, story_pb2

# Called with (step, total) while a stage makes progress on an item.
ProgressCallback = Callable[[int, int], None]


class StoryStage(Protocol):
    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        """Raises InvalidArgument for choices the stage does not know (engine...)."""

    async def write(
        self, options: story_pb2.StoryRequestOptions, index: int, seed: int
    ) -> common_pb2.Story: ...


class RenderStage(Protocol):
    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        """Raises InvalidArgument for choices the stage does not know (painter...)."""

    async def render(
        self, request: render_pb2.RenderRequest, progress: ProgressCallback | None = None
    ) -> common_pb2.Image: ...


class EvaluateStage(Protocol):
    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        """Raises InvalidArgument for choices the stage does not know."""

    async def evaluate(
        self, request: evaluation_pb2.EvaluateItemRequest
    ) -> evaluation_pb2.ItemEvaluation: ...

    async def summarize(self, request: evaluation_pb2.SummarizeSetRequest) -> evaluation_pb2.SetSummary:
        """The set summary of the job's stored item evaluations (the evaluation service owns it)."""


@dataclass(frozen=True)
class Stages:
    story: StoryStage
    render: RenderStage
    evaluate: EvaluateStage

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        await self.story.validate(spec)
        if not spec.skip_render:
            await self.render.validate(spec)
        if not spec.skip_evaluation:
            await self.evaluate.validate(spec)
