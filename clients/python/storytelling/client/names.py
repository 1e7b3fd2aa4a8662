"""Readable names for the API's enums, so users write "cor-guided" rather than STORY_MODE_COR_GUIDED."""

from __future__ import annotations

from typing import TypeVar, cast

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

TERMINAL_JOB_STATES = frozenset(
    {pipeline_pb2.JOB_STATE_SUCCEEDED, pipeline_pb2.JOB_STATE_FAILED, pipeline_pb2.JOB_STATE_CANCELLED}
)
