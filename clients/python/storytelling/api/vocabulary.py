"""The words services and SDK share: enum labels, ended states, default ports and when a stage is done.

Its one owner: the orchestrator counts stages with `stage_outcome`, the SDK and CLI show those counts and
parse users' labels ("cor-guided" rather than STORY_MODE_COR_GUIDED) with `parse`, and every service and
client takes its default port from `DEFAULT_PORTS`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, TypeVar, cast

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

# A generated enum class such as `pipeline_pb2.Stage` (an int subclass whose metaclass is EnumTypeWrapper).
E = TypeVar("E", bound=int)


def _wrapper(enum: type[int]) -> EnumTypeWrapper:
    return cast(EnumTypeWrapper, enum)


def _prefix(enum: type[int]) -> str:
    return _wrapper(enum).DESCRIPTOR.values[0].name.removesuffix("UNSPECIFIED")


def label(enum: type[int], value: int) -> str:
    """`label(pipeline_pb2.Stage, 2)` -> "render"; unknown values (newer servers) -> "unknown(9)"."""
    try:
        return _wrapper(enum).Name(value).removeprefix(_prefix(enum)).lower()
    except ValueError:
        return f"unknown({value})"


def choices(enum: type[int]) -> list[str]:
    """Labels of every value except UNSPECIFIED."""
    return [label(enum, v.number) for v in _wrapper(enum).DESCRIPTOR.values if v.number != 0]


def parse(enum: type[E], name: str) -> E:
    """Parses a label ("cor-guided", "COR_GUIDED" or the full enum name); ValueError lists the choices."""
    wrapper = _wrapper(enum)
    key = name.strip().upper().replace("-", "_")
    for candidate in (key, _prefix(enum) + key):
        if candidate in wrapper.DESCRIPTOR.values_by_name and wrapper.Value(candidate) != 0:
            return cast(E, wrapper.Value(candidate))
    raise ValueError(f"unknown {wrapper.DESCRIPTOR.name} {name!r}; choose from {', '.join(choices(enum))}")


Dimension = common_pb2.Dimension
StoryMode = common_pb2.StoryMode
Evaluator = evaluation_pb2.Evaluator
JobState = pipeline_pb2.JobState
ItemState = pipeline_pb2.ItemState
Stage = pipeline_pb2.Stage

# Jobs in these states never change again.
TERMINAL_JOB_STATES = frozenset(
    {pipeline_pb2.JOB_STATE_SUCCEEDED, pipeline_pb2.JOB_STATE_FAILED, pipeline_pb2.JOB_STATE_CANCELLED}
)
# Items in these states are not run again, not even when their job resumes.
ENDED_ITEM_STATES = frozenset(
    {pipeline_pb2.ITEM_STATE_SUCCEEDED, pipeline_pb2.ITEM_STATE_FAILED, pipeline_pb2.ITEM_STATE_CANCELLED}
)


@dataclass(frozen=True)
class Ports:
    grpc: int
    metrics: int


# Default ports of each service: its gRPC API and its Prometheus /metrics.
DEFAULT_PORTS = {
    "orchestrator": Ports(50050, 9100),
    "story": Ports(50051, 9101),
    "render": Ports(50052, 9102),
    "evaluation": Ports(50053, 9103),
}


def default_address(service: str, host: str = "localhost") -> str:
    """Where a client finds `service` when told nothing else: "localhost:50051" for story."""
    return f"{host}:{DEFAULT_PORTS[service].grpc}"


# The stages in pipeline order, the Item field each one fills, and the ItemArtifacts path it sets.
STAGES = (pipeline_pb2.STAGE_STORY, pipeline_pb2.STAGE_RENDER, pipeline_pb2.STAGE_EVALUATE)
STAGE_OUTPUTS: dict[int, str] = {
    pipeline_pb2.STAGE_STORY: "story",
    pipeline_pb2.STAGE_RENDER: "image",
    pipeline_pb2.STAGE_EVALUATE: "evaluation",
}
STAGE_ARTIFACTS: dict[int, str] = {
    pipeline_pb2.STAGE_STORY: "story_path",
    pipeline_pb2.STAGE_RENDER: "image_path",
    pipeline_pb2.STAGE_EVALUATE: "evaluation_path",
}
# The service each stage calls, as "waiting for <service>" names it.
STAGE_SERVICES: dict[int, str] = {
    pipeline_pb2.STAGE_STORY: "story",
    pipeline_pb2.STAGE_RENDER: "render",
    pipeline_pb2.STAGE_EVALUATE: "evaluation",
}

Outcome = Literal["done", "failed", "running", "waiting"]
_IN_A_STAGE = (
    pipeline_pb2.ITEM_STATE_RUNNING,
    pipeline_pb2.ITEM_STATE_WAITING,
    pipeline_pb2.ITEM_STATE_FAILED,
)


def stage_outcome(item: pipeline_pb2.Item, stage: int) -> Outcome | None:
    """Where one item is in one stage: "done", "failed", "running", "waiting" or None (not started).

    A stage is done once its output or artifact path is on the item (story, image metadata,
    evaluation), the item succeeded, or the item went on to a later stage.
    """
    return stage_outcomes(item, (stage,))[0]


def stage_outcomes(item: pipeline_pb2.Item, stages: Sequence[int]) -> list[Outcome | None]:
    """`stage_outcome` for several stages of one item at once (the orchestrator counts every change)."""
    state = item.state
    if state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
        return ["done"] * len(stages)
    current, artifacts, in_a_stage = item.stage, item.artifacts, state in _IN_A_STAGE
    outcomes: list[Outcome | None] = []
    for stage in stages:
        if (
            item.HasField(STAGE_OUTPUTS[stage])
            or getattr(artifacts, STAGE_ARTIFACTS[stage])
            or (in_a_stage and current > stage)
        ):
            outcomes.append("done")
        elif in_a_stage and current == stage:
            outcomes.append(_STAGE_OUTCOMES[state])
        else:
            outcomes.append(None)
    return outcomes


_STAGE_OUTCOMES: dict[int, Outcome] = {
    pipeline_pb2.ITEM_STATE_RUNNING: "running",
    pipeline_pb2.ITEM_STATE_WAITING: "waiting",
    pipeline_pb2.ITEM_STATE_FAILED: "failed",
}


def waiting_line(wait: pipeline_pb2.ServiceWait) -> str:
    """ "waiting for render since 12:03:07 UTC: render answered UNAVAILABLE: ...", as CLI and gallery show it."""
    since = wait.since.ToDatetime().strftime("%H:%M:%S UTC") if wait.HasField("since") else "now"
    return f"waiting for {wait.service} since {since}" + (f": {wait.reason}" if wait.reason else "")
