"""Orchestrator settings: env STORYTELLING_ORCHESTRATOR_<FIELD> or --field-name."""

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from storytelling.api.vocabulary import DEFAULT_PORTS, default_address
from storytelling.runtime.calls import CallerFiles
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.endpoints import check_target

from .gate import WaitPolicy
from .policy import PipelinePolicy, StagePolicy
from .quotas import QuotaLimits, Quotas
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
    story_address: str = Field(
        default_address("story", "127.0.0.1"),
        description="StoryService: host:port, dns:///host:port or kubernetes:///service:port (calls rotate "
        "over every replica).",
    )
    render_address: str = Field(
        default_address("render", "127.0.0.1"), description="RenderService, as story_address."
    )
    evaluation_address: str = Field(
        default_address("evaluation", "127.0.0.1"), description="EvaluationService, as story_address."
    )
    downstream_tls: bool = Field(
        False,
        description="Reach story, render and evaluation over TLS, trusting the system's roots unless "
        "downstream_tls_ca_file is set (which implies TLS).",
    )
    downstream_tls_ca_file: Path | None = Field(
        None, description="PEM CA bundle that signs the story, render and evaluation certificates."
    )
    downstream_tls_cert_file: Path | None = Field(
        None, description="PEM client certificate for mutual TLS with the stage services (with its key)."
    )
    downstream_tls_key_file: Path | None = Field(None, description="PEM key of downstream_tls_cert_file.")
    downstream_tls_server_name: str | None = Field(
        None,
        description="Name to verify in the stage services' certificates, if not their address's (its host, "
        "or service.namespace.svc for kubernetes:/// addresses).",
    )
    downstream_token_file: Path | None = Field(
        None,
        description="File holding the bearer token sent to story, render and evaluation when they check "
        "tokens (a Secret key mounted as a file); re-read when it changes.",
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
        6,
        ge=1,
        description="Attempts per stage and item when a call runs past its deadline or the "
        "service's queue is full (an unavailable service is waited for instead, see max_wait_s).",
    )
    initial_backoff_s: float = Field(1.0, ge=0, description="Wait after the first failed attempt; doubles.")
    max_backoff_s: float = Field(30.0, ge=0, description="Longest wait between attempts.")
    max_wait_s: float = Field(
        3600.0,
        gt=0,
        description="How long items wait for a stage service that is unavailable (restarting, "
        "rolling out) before they fail, for jobs that do not set JobSpec.max_wait_s.",
    )
    max_probe_interval_s: float = Field(
        5.0,
        gt=0,
        description="Longest wait between two probes of an unavailable service: how soon after "
        "it is back the waiting items go on.",
    )
    max_items_per_get: int = Field(
        10_000, ge=1, description="Most items GetJob returns at once; larger jobs are paged with ListItems."
    )
    sync_files: bool = Field(
        True,
        description="Sync the artifacts' file system to disk before each commit that records new "
        "artifacts (one syncfs per group of commits), so a power loss never leaves a recorded stage "
        "without its artifact. A killed process loses nothing either way.",
    )
    quota_running_jobs: int | None = Field(
        None,
        ge=1,
        description="Jobs queued or running at once per identity (RunItem counts); unset: no limit.",
    )
    quota_items_per_job: int | None = Field(
        None,
        ge=1,
        description="Largest job per identity (max_items_per_job bounds everyone); unset: no limit.",
    )
    quota_items_per_hour: int | None = Field(
        None,
        ge=1,
        description="Items an identity may start per hour: a token bucket holding one hour's worth, "
        "refilled continuously; unset: no limit.",
    )
    quota_overrides: dict[str, QuotaLimits] = Field(
        default_factory=dict,
        description='Limits of named identities instead of the quota_* defaults, JSON: {"batch": '
        '{"running_jobs": 8, "items_per_job": 1000, "items_per_hour": 10000}}.',
    )
    quota_running_retry_s: float = Field(
        30.0, gt=0, description="Retry delay suggested when the running-jobs quota is full."
    )

    @model_validator(mode="after")
    def _downstream_pair(self) -> "OrchestratorSettings":
        if (self.downstream_tls_cert_file is None) != (self.downstream_tls_key_file is None):
            raise ValueError("downstream_tls_cert_file and downstream_tls_key_file go together")
        return self

    def downstream(self) -> CallerFiles:
        return CallerFiles(
            tls=self.downstream_tls,
            ca_file=self.downstream_tls_ca_file,
            cert_file=self.downstream_tls_cert_file,
            key_file=self.downstream_tls_key_file,
            server_name=self.downstream_tls_server_name,
            token_file=self.downstream_token_file,
        )

    def quotas(self) -> Quotas:
        default = QuotaLimits(
            running_jobs=self.quota_running_jobs,
            items_per_job=self.quota_items_per_job,
            items_per_hour=self.quota_items_per_hour,
        )
        return Quotas(default, self.quota_overrides, running_retry_s=self.quota_running_retry_s)

    _addresses_parse = field_validator("story_address", "render_address", "evaluation_address")(check_target)

    def pipeline(self) -> PipelinePolicy:
        return PipelinePolicy(
            story=StagePolicy(self.story_concurrency, self.story_deadline_s),
            render=StagePolicy(self.render_concurrency, self.render_deadline_s),
            evaluate=StagePolicy(self.evaluation_concurrency, self.evaluation_deadline_s),
            retry=RetryPolicy(self.max_attempts, self.initial_backoff_s, self.max_backoff_s),
        )

    def wait(self) -> WaitPolicy:
        return WaitPolicy(max_wait_s=self.max_wait_s, max_probe_s=self.max_probe_interval_s)
