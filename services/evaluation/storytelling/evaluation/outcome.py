"""How an evaluator's run ended: a result with an honest status, and what produced it."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from storytelling.evaluation.provenance import Provenance

R = TypeVar("R")


class State(StrEnum):
    OK = "ok"
    NOT_RUN = "not_run"
    FAILED = "failed"


@dataclass(frozen=True)
class Status:
    state: State
    reason: str = ""
    engine: str = ""
    seconds: float = 0.0
    random_weights: bool = False  # a model behind the result has random weights: numbers mean nothing


@dataclass(frozen=True)
class Outcome(Generic[R]):
    status: Status
    report: R | None = None
    provenance: Provenance | None = None
