"""google.rpc.RetryInfo from a failed call's status details, without googleapis-common-protos.

The SDK depends on grpcio and protobuf only, so the two google.rpc messages it reads are declared here,
in a descriptor pool of their own: they never clash with googleapis-common-protos if that is installed.
"""

from __future__ import annotations

from collections.abc import Iterable

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, duration_pb2, message_factory
from google.protobuf.message import DecodeError

DETAILS_KEY = "grpc-status-details-bin"
RETRY_INFO = "google.rpc.RetryInfo"

_F = descriptor_pb2.FieldDescriptorProto


def _messages() -> tuple[type, type]:
    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2):
        pool.Add(descriptor_pb2.FileDescriptorProto.FromString(module.DESCRIPTOR.serialized_pb))
    file = descriptor_pb2.FileDescriptorProto(
        name="storytelling/client/google_rpc.proto",
        package="google.rpc",
        syntax="proto3",
        dependency=["google/protobuf/any.proto", "google/protobuf/duration.proto"],
    )
    status = file.message_type.add(name="Status")
    status.field.add(name="code", number=1, type=_F.TYPE_INT32, label=_F.LABEL_OPTIONAL)
    status.field.add(name="message", number=2, type=_F.TYPE_STRING, label=_F.LABEL_OPTIONAL)
    status.field.add(
        name="details",
        number=3,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    retry = file.message_type.add(name="RetryInfo")
    retry.field.add(
        name="retry_delay",
        number=1,
        type=_F.TYPE_MESSAGE,
        label=_F.LABEL_OPTIONAL,
        type_name=".google.protobuf.Duration",
    )
    pool.Add(file)
    return tuple(
        message_factory.GetMessageClass(pool.FindMessageTypeByName(f"google.rpc.{n}"))
        for n in ("Status", "RetryInfo")
    )


_Status, _RetryInfo = _messages()


def retry_delay(trailing_metadata: Iterable[tuple[str, str | bytes]] | None) -> float | None:
    """Seconds after which the server says a retry can succeed (google.rpc.RetryInfo), if it says."""
    for key, value in trailing_metadata or ():
        if key != DETAILS_KEY or not isinstance(value, bytes):
            continue
        try:
            status = _Status.FromString(value)
            for detail in status.details:
                if detail.type_url.rpartition("/")[2] == RETRY_INFO:
                    delay = _RetryInfo.FromString(detail.value).retry_delay
                    return delay.seconds + delay.nanos / 1e9
        except DecodeError:
            return None
    return None
