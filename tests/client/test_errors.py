"""Status codes map to exception classes that say what went wrong; pure, no network."""

import grpc
import pytest
from storytelling.client import errors


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError),
        (grpc.StatusCode.UNAVAILABLE, errors.UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, errors.DeadlineExceededError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, errors.ResourceExhaustedError),
        (grpc.StatusCode.UNIMPLEMENTED, errors.UnimplementedError),
        (grpc.StatusCode.INTERNAL, errors.InternalError),
        (grpc.StatusCode.UNKNOWN, errors.InternalError),
    ],
)
def test_codes_map_to_classes(code: grpc.StatusCode, cls: type) -> None:
    error = grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="went wrong")
    translated = errors.from_rpc_error(error, method="GetJob", target="host:1")
    assert type(translated) is cls and translated.code == code
    assert str(translated) == f"GetJob on host:1: {code.name}: went wrong"


def test_invalid_argument_parses_the_field() -> None:
    error = errors.InvalidArgumentError(
        grpc.StatusCode.INVALID_ARGUMENT, "spec.story.sampling.temperature: must be in [0, 2], got 3.0"
    )
    assert error.field == "spec.story.sampling.temperature"
    assert error.reason == "must be in [0, 2], got 3.0"
    plain = errors.InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "the story is empty")
    assert plain.field is None and plain.reason == "the story is empty"
