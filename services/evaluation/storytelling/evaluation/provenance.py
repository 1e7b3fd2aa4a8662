"""What an evaluation was produced with: prompt versions, engines, sampling, seeds, rejected outputs.

As complete as a story's provenance, so an alignment or complexity result can be audited and rerun. The
evaluators fill it in as they go (a rejected output is recorded when it is rejected), so a failed
evaluation keeps what was tried too.
"""

from dataclasses import dataclass, field

from storytelling.llm import ChatEngine, SamplingParams


@dataclass(frozen=True)
class EngineRef:
    kind: str
    endpoint: str
    model: str

    @classmethod
    def of(cls, engine: ChatEngine) -> "EngineRef":
        return cls(engine.kind, engine.endpoint, engine.model)

    @property
    def label(self) -> str:
        return f"{self.kind}:{self.model}" + (f"@{self.endpoint}" if self.endpoint else "")


@dataclass(frozen=True)
class Rejected:
    """A model output that was not accepted: `reason` is machine-readable, `detail` the errors."""

    reason: str
    detail: str
    text: str


@dataclass
class Provenance:
    extractor_prompt_version: str = ""
    prompt_version: str = ""
    extractor: EngineRef | None = None
    judge: EngineRef | None = None
    extractor_sampling: SamplingParams | None = None
    judge_sampling: SamplingParams | None = None
    control_seed: int | None = None
    control_pool: str = ""
    rejected: list[Rejected] = field(default_factory=list)
    scorer: str = ""
