"""Status codes map to exception classes that say what went wrong; pure, no network."""

import grpc
import pytest
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from storytelling.client import errors


def _failed(code: grpc.StatusCode, details: str, trailing: tuple = ()) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(*trailing), details=details)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, errors.InvalidArgumentError),
        (grpc.StatusCode.OUT_OF_RANGE, errors.InvalidArgumentError),
        (grpc.StatusCode.NOT_FOUND, errors.NotFoundError),
        (grpc.StatusCode.ALREADY_EXISTS, errors.AlreadyExistsError),
        (grpc.StatusCode.FAILED_PRECONDITION, errors.FailedPreconditionError),
        (grpc.StatusCode.ABORTED, errors.FailedPreconditionError),
        (grpc.StatusCode.CANCELLED, errors.CallCancelledError),
        (grpc.StatusCode.PERMISSION_DENIED, errors.PermissionDeniedError),
        (grpc.StatusCode.UNAUTHENTICATED, errors.UnauthenticatedError),
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


@pytest.mark.parametrize(
    ("method", "target", "message"),
    [
        ("GetJob", "host:1", "GetJob on host:1: NOT_FOUND: job j1"),
        ("GetJob", "", "GetJob: NOT_FOUND: job j1"),
        ("", "host:1", "host:1: NOT_FOUND: job j1"),
        ("", "", "NOT_FOUND: job j1"),
    ],
)
def test_the_message_says_where_as_far_as_it_is_known(method, target, message) -> None:
    error = errors.from_rpc_error(_failed(grpc.StatusCode.NOT_FOUND, "job j1"), method=method, target=target)
    assert (str(error), error.method, error.target, error.details) == (message, method, target, "job j1")


def test_defaults_name_no_place_and_empty_details_show_the_code_alone() -> None:
    assert str(errors.StorytellingError(grpc.StatusCode.NOT_FOUND, "")) == "NOT_FOUND"
    bare = errors.InvalidArgumentError(grpc.StatusCode.INVALID_ARGUMENT, "items[2].story: is empty")
    assert (str(bare), bare.method, bare.target) == ("INVALID_ARGUMENT: items[2].story: is empty", "", "")
    assert (bare.field, bare.reason) == ("items[2].story", "is empty")
    assert str(errors.from_rpc_error(_failed(grpc.StatusCode.INTERNAL, ""))) == "INTERNAL"
    for bare in (
        errors.ResourceExhaustedError(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
        errors.UnauthenticatedError(grpc.StatusCode.UNAUTHENTICATED, "queue full"),
    ):
        assert (str(bare), bare.method, bare.target) == (f"{bare.code.name}: queue full", "", "")


def test_an_error_without_a_status_is_internal_with_its_text() -> None:
    translated = errors.from_rpc_error(grpc.RpcError("channel closed"))
    assert type(translated) is errors.InternalError
    assert (translated.code, translated.details, str(translated)) == (
        grpc.StatusCode.UNKNOWN,
        "channel closed",
        "UNKNOWN: channel closed",
    )


@pytest.mark.parametrize(
    ("details", "description"),
    [
        (
            "failed to connect to all addresses",
            "cannot connect to the service (failed to connect to all addresses); is it running?",
        ),
        (
            "Connection refused",
            "cannot connect to the service (Connection refused); is it running?",
        ),
        (
            "Socket closed",
            "the service closed the connection (Socket closed); if it serves TLS, pass --tls or --tls-ca",
        ),
        ("name resolution failed", "UNAVAILABLE: name resolution failed"),
        *[
            (
                details,
                f"the TLS handshake with the service failed ({details}); check --tls-ca (the CA that signed "
                "the server's certificate), --tls-server-name, and for mutual TLS --tls-cert/--tls-key",
            )
            for details in ("Handshake read failed", "Ssl_error_syscall", "Certificate verify failed")
        ],
    ],
)
def test_unavailable_says_what_to_check(details, description) -> None:
    error = errors.from_rpc_error(_failed(grpc.StatusCode.UNAVAILABLE, details), method="ListJobs")
    assert str(error) == f"ListJobs: {description}"


@pytest.mark.parametrize(
    ("token_sent", "description"),
    [
        (
            False,
            "UNAUTHENTICATED: no token (no token was sent: pass --token or --token-file, or set "
            "STORYTELLING_TOKEN; in Python, ChannelOptions(token=...))",
        ),
        (True, "UNAUTHENTICATED: no token (the token that was sent is not accepted: check it is current)"),
        (None, "UNAUTHENTICATED: no token"),
    ],
)
def test_unauthenticated_says_whether_a_token_was_sent(token_sent, description) -> None:
    failed = _failed(grpc.StatusCode.UNAUTHENTICATED, "no token")
    error = errors.from_rpc_error(failed, token_sent=token_sent)
    assert (error.token_sent, str(error)) == (token_sent, description)


def test_resource_exhausted_carries_the_servers_retry_delay() -> None:
    info = any_pb2.Any()
    info.Pack(error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=2, nanos=500_000_000)))
    status = status_pb2.Status(code=8, message="quota spent", details=[info])
    failed = _failed(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "quota spent",
        (("grpc-status-details-bin", status.SerializeToString()),),
    )
    error = errors.from_rpc_error(failed, method="CreateJob", target="host:1")
    assert (type(error), error.retry_after_s) == (errors.ResourceExhaustedError, 2.5)
    assert str(error) == "CreateJob on host:1: RESOURCE_EXHAUSTED: quota spent"
    plain = errors.from_rpc_error(_failed(grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"))
    assert plain.retry_after_s is None
