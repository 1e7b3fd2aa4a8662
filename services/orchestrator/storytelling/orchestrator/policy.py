"""How hard the orchestrator drives each stage: calls in flight, deadline per attempt, retries."""

import asyncio
from dataclasses import dataclass, field

from storytelling.v1 import pipeline_pb2

from .retry import RetryPolicy

STORY, RENDER, EVALUATE = pipeline_pb2.STAGE_STORY, pipeline_pb2.STAGE_RENDER, pipeline_pb2.STAGE_EVALUATE


@dataclass(frozen=True)
class StagePolicy:
    # Calls in flight to the stage over all jobs (each job runs twice as many workers, see JobRunner).
    concurrency: int = 1
    # Deadline of one attempt.
    deadline_s: float = 300.0


@dataclass(frozen=True)
class PipelinePolicy:
    story: StagePolicy = field(default_factory=StagePolicy)
    render: StagePolicy = field(default_factory=StagePolicy)
    evaluate: StagePolicy = field(default_factory=StagePolicy)
    retry: RetryPolicy = field(default_factory=RetryPolicy)

    def of(self, stage: int) -> StagePolicy:
        return {STORY: self.story, RENDER: self.render, EVALUATE: self.evaluate}[stage]

    def limits(self) -> dict[int, asyncio.Semaphore]:
        """Caps on calls in flight per stage, shared by every job of one orchestrator."""
        return {stage: asyncio.Semaphore(self.of(stage).concurrency) for stage in (STORY, RENDER, EVALUATE)}
