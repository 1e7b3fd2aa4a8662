"""Orchestrator settings: env STORYTELLING_ORCHESTRATOR_<FIELD> or --field-name."""

from pathlib import Path

from pydantic import Field

from storytelling.api.vocabulary import DEFAULT_PORTS, default_address
from storytelling.runtime.config import ServiceSettings

from .policy import PipelinePolicy, StagePolicy
from .retry import RetryPolicy


class OrchestratorSettings(ServiceSettings):
    model_config = ServiceSettings.env("ORCHESTRATOR")

    port: int = Field(DEFAULT_PORTS["orchestrator"].grpc, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        DEFAULT_PORTS["orchestrator"].metrics,
        ge=0,
        le=65535,
        description="Prometheus metrics port; 0 disables.",
    )
    data_dir: Path = Field(
        Path.home() / ".local" / "share" / "storytelling",
        description="Holds orchestrator.sqlite3 and jobs/<job_id>/ with every artifact.",
    )
    story_address: str = Field(default_address("story", "127.0.0.1"), description="StoryService host:port.")
    render_address: str = Field(
        default_address("render", "127.0.0.1"), description="RenderService host:port."
    )
    evaluation_address: str = Field(
        default_address("evaluation", "127.0.0.1"), description="EvaluationService host:port."
    )

    max_items_per_job: int = Field(1000, ge=1, description="Largest N a job may ask for.")
    max_running_jobs: int = Field(4, ge=1, description="Jobs running at once; later ones wait QUEUED.")
    story_concurrency: int = Field(2, ge=1, description="Story calls in flight, over all jobs.")
    render_concurrency: int = Field(1, ge=1, description="Render calls in flight, over all jobs.")
    evaluation_concurrency: int = Field(2, ge=1, description="Evaluation calls in flight, over all jobs.")
    story_deadline_s: float = Field(300.0, gt=0, description="Deadline of one story attempt.")
    render_deadline_s: float = Field(600.0, gt=0, description="Deadline of one render attempt.")
    evaluation_deadline_s: float = Field(600.0, gt=0, description="Deadline of one evaluation attempt.")
    max_attempts: int = Field(
        6, ge=1, description="Attempts per stage and item for transient failures; 6 ride out ~30 s down."
    )
    initial_backoff_s: float = Field(1.0, ge=0, description="Wait after the first failed attempt; doubles.")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest wait between attempts.")

    def pipeline(self) -> PipelinePolicy:
        return PipelinePolicy(
            story=StagePolicy(self.story_concurrency, self.story_deadline_s),
            render=StagePolicy(self.render_concurrency, self.render_deadline_s),
            evaluate=StagePolicy(self.evaluation_concurrency, self.evaluation_deadline_s),
            retry=RetryPolicy(self.max_attempts, self.initial_backoff_s, self.max_backoff_s),
        )
