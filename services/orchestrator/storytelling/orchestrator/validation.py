"""Checks of a JobSpec that need no downstream service; errors name the offending field."""

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper

from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2


def validate_spec(spec: pipeline_pb2.JobSpec, max_items: int | None) -> None:
    """Raises InvalidArgument; `max_items` None skips the item count (RunItem runs exactly one)."""
    if max_items is not None and not 1 <= spec.items <= max_items:
        raise InvalidArgument(f"must be in [1, {max_items}], got {spec.items}", field="spec.items")
    _known(common_pb2.StoryMode, spec.story.mode, "spec.story.mode")
    _known(common_pb2.ImageFormat, spec.render.format, "spec.render.format")
    for position, evaluator in enumerate(spec.evaluators):
        field = f"spec.evaluators[{position}]"
        _known(evaluation_pb2.Evaluator, evaluator, field)
        if evaluator == evaluation_pb2.EVALUATOR_UNSPECIFIED:
            raise InvalidArgument(
                "EVALUATOR_UNSPECIFIED is not an evaluator; leave the list empty for all", field=field
            )


def _known(enum: EnumTypeWrapper, value: int, field: str) -> None:
    if value not in enum.values():
        raise InvalidArgument(f"unknown value {value}; known: {', '.join(enum.keys())}", field=field)
