"""The fast protobuf JSON writes exactly what json_format writes, for every message of our API."""

import json
import math

import pytest
from google.protobuf import json_format, struct_pb2, timestamp_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from storytelling.api import protojson
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, render_pb2, story_pb2

F = FieldDescriptor
MODULES = (common_pb2, evaluation_pb2, pipeline_pb2, render_pb2, story_pb2)


def expected(message: Message) -> bytes:
    return (json_format.MessageToJson(message, indent=None) + "\n").encode("utf-8")


def scalar(field: FieldDescriptor, seed: int) -> object:
    """A value of the field's type that is not its default and varies with `seed`."""
    kind = field.type
    if kind == F.TYPE_ENUM:
        values = [v.number for v in field.enum_type.values if v.number != 0]
        return values[seed % len(values)] if values else 0
    if kind == F.TYPE_STRING:
        return f'é"\\\n{seed}\u2603'
    if kind == F.TYPE_BYTES:
        return bytes([seed % 256, 0, 255])
    if kind == F.TYPE_BOOL:
        return True
    if kind in (F.TYPE_FLOAT, F.TYPE_DOUBLE):
        return (0.1, 0.3333333, 1e-7, 12345.678, -2.5)[seed % 5]
    if kind in (F.TYPE_INT64, F.TYPE_SINT64, F.TYPE_SFIXED64):
        return -(2**62) + seed
    if kind in (F.TYPE_UINT64, F.TYPE_FIXED64):
        return 2**63 + seed
    if kind in (F.TYPE_UINT32, F.TYPE_FIXED32):
        return 2**31 + seed
    return -(2**30) + seed


def fill(message: Message, depth: int = 0, seed: int = 1) -> Message:
    """Sets every field of `message` (two elements of repeated fields and maps), nested up to a depth."""
    for field in message.DESCRIPTOR.fields:
        if field.containing_oneof is not None and field.containing_oneof.fields[0] is not field:
            continue  # one member of each oneof; another test sets the others
        seed += 1
        target = getattr(message, field.name)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            key, value = (field.message_type.fields_by_name[n] for n in ("key", "value"))
            for n in range(2):
                k = scalar(key, seed + n)
                if value.message_type is not None:
                    if depth < 3:
                        fill(target[k], depth + 1, seed + n)
                else:
                    target[k] = scalar(value, seed + n)
        elif field.message_type is not None:
            if depth >= 3 and field.message_type.full_name != "google.protobuf.Timestamp":
                continue
            for n in range(2 if field.is_repeated else 1):
                sub = target.add() if field.is_repeated else target
                if field.message_type.full_name == "google.protobuf.Timestamp":
                    sub.FromNanoseconds(1_700_000_000_123_456_789 + seed)
                else:
                    fill(sub, depth + 1, seed + n)
                    if not field.is_repeated and not sub.ListFields():
                        sub.SetInParent()
        elif field.is_repeated:
            target.extend([scalar(field, seed), scalar(field, seed + 1)])
        else:
            setattr(message, field.name, scalar(field, seed))
    return message


def every_message() -> list[type[Message]]:
    return [getattr(module, name) for module in MODULES for name in module.DESCRIPTOR.message_types_by_name]


@pytest.mark.parametrize("message_type", every_message(), ids=lambda t: t.DESCRIPTOR.name)
def test_a_message_with_every_field_set_is_written_as_json_format_writes_it(message_type) -> None:
    message = fill(message_type())
    assert protojson.message_json(message) == expected(message)
    assert protojson.message_json(message_type()) == expected(message_type()) == b"{}\n"


def oneof_members() -> list[tuple[type[Message], FieldDescriptor]]:
    return [
        (message_type, field)
        for message_type in every_message()
        for oneof in message_type.DESCRIPTOR.oneofs
        for field in oneof.fields
        if not field.has_presence or field.containing_oneof.name[0] != "_"  # not a proto3 optional
    ]


@pytest.mark.parametrize(
    ("message_type", "field"), oneof_members(), ids=lambda x: getattr(x, "name", None) or x.DESCRIPTOR.name
)
def test_every_member_of_a_oneof_is_written_as_json_format_writes_it(message_type, field) -> None:
    message = message_type()
    if field.message_type is not None:
        fill(getattr(message, field.name))
        getattr(message, field.name).SetInParent()
    else:
        setattr(message, field.name, scalar(field, 7))
    assert protojson.message_json(message) == expected(message)


def test_special_values_are_written_as_json_format_writes_them() -> None:
    evaluation = evaluation_pb2.ItemEvaluation(item_id="x")
    for value in (math.inf, -math.inf, math.nan, 0.1, 1 / 3, 3.4e38, 1e-45):
        evaluation.alignment.score = value
        assert protojson.message_json(evaluation) == expected(evaluation)
    item = pipeline_pb2.Item(state=12345)  # an open enum keeps a value it does not know
    assert protojson.message_json(item) == expected(item)
    assert json.loads(protojson.message_json(item)) == {"state": 12345}


def test_well_known_types_are_left_to_json_format() -> None:
    stamp = timestamp_pb2.Timestamp(seconds=1, nanos=5)
    assert protojson.to_object(stamp) == "1970-01-01T00:00:01.000000005Z"
    value = struct_pb2.Struct(
        fields={"a": struct_pb2.Value(null_value=0), "b": struct_pb2.Value(number_value=2)}
    )
    assert protojson.message_json(value) == expected(value)


def test_what_it_writes_reads_back() -> None:
    story = fill(common_pb2.Story())
    assert json_format.Parse(protojson.message_json(story), common_pb2.Story()) == story
