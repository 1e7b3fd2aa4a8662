"""Exceptions the SDK raises instead of bare `grpc.RpcError`, one class per gRPC status family.

The services put `field: message` into the status details of INVALID_ARGUMENT (see
`storytelling.runtime.errors`), so `InvalidArgumentError.field` names the offending request field.
"""

from __future__ import annotations

import re

import grpc
from storytelling.client.details import retry_delay

# "spec.items: must be in [1, 100], got 0" -> field "spec.items"; also "items[2].story: ...".
_NAME = r"[A-Za-z_]\w*(?:\[\d+\])?"
_FIELD_PREFIX = re.compile(rf"^(?P<field>{_NAME}(?:\.{_NAME})*): (?P<rest>.+)$", re.DOTALL)


class StorytellingError(Exception):
    """An RPC to a StorytellingPainter service failed; `code` and `details` come from the server."""

    def __init__(self, code: grpc.StatusCode, details: str, *, method: str = "", target: str = "") -> None:
        self.code = code
        self.details = details
        self.method = method
        self.target = target
        where = f"{method} on {target}" if method and target else method or target
        super().__init__(f"{where}: {self.describe()}" if where else self.describe())

    def describe(self) -> str:
        return f"{self.code.name}: {self.details}" if self.details else self.code.name


class InvalidArgumentError(StorytellingError):
    """The request was rejected as invalid; `field` is the request field at fault, when known."""

    def __init__(self, code: grpc.StatusCode, details: str, *, method: str = "", target: str = "") -> None:
        match = _FIELD_PREFIX.match(details)
        self.field: str | None = match["field"] if match else None
        self.reason = match["rest"] if match else details
        super().__init__(code, details, method=method, target=target)


class NotFoundError(StorytellingError):
    """The job, pool, painter or other named object does not exist."""


class AlreadyExistsError(StorytellingError):
    """The object to create exists already."""


class FailedPreconditionError(StorytellingError):
    """The request is valid but not in the current state (for example cancelling a finished job)."""


class UnavailableError(StorytellingError):
    """The service or one of its engines cannot be reached; retrying later may succeed."""

    def describe(self) -> str:
        details = self.details.lower()
        if "handshake" in details or "ssl" in details or "certificate" in details:
            return (
                f"the TLS handshake with the service failed ({self.details}); check --tls-ca (the CA that "
                "signed the server's certificate), --tls-server-name, and for mutual TLS --tls-cert/--tls-key"
            )
        if "socket closed" in details:
            return f"the service closed the connection ({self.details}); if it serves TLS, pass --tls or --tls-ca"
        if "failed to connect" in details or "connection refused" in details:
            return f"cannot connect to the service ({self.details}); is it running?"
        return super().describe()


class DeadlineExceededError(StorytellingError):
    """The call did not finish within its deadline."""


class ResourceExhaustedError(StorytellingError):
    """A limit was hit: message size, queue capacity or a quota. `retry_after_s` is when the server says
    a retry can succeed (google.rpc.RetryInfo in the status details), None if it does not say."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        method: str = "",
        target: str = "",
        retry_after_s: float | None = None,
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(code, details, method=method, target=target)


class CallCancelledError(StorytellingError):
    """The call was cancelled, by the client or the server."""


class PermissionDeniedError(StorytellingError):
    """The caller may not do this: the token lacks the scope, or the job is another identity's."""


class UnauthenticatedError(PermissionDeniedError):
    """The service requires a bearer token and got none, or one it does not accept. `token_sent` says
    which side of that it was (None: unknown); the message never repeats the token."""

    def __init__(
        self,
        code: grpc.StatusCode,
        details: str,
        *,
        method: str = "",
        target: str = "",
        token_sent: bool | None = None,
    ) -> None:
        self.token_sent = token_sent
        super().__init__(code, details, method=method, target=target)

    def describe(self) -> str:
        if self.token_sent is False:
            return (
                f"{super().describe()} (no token was sent: pass --token or --token-file, or set "
                "STORYTELLING_TOKEN; in Python, ChannelOptions(token=...))"
            )
        if self.token_sent:
            return f"{super().describe()} (the token that was sent is not accepted: check it is current)"
        return super().describe()


class UnimplementedError(StorytellingError):
    """The server does not implement this method (an older or different service at that address)."""


class InternalError(StorytellingError):
    """The server failed unexpectedly; its logs have the details."""


_BY_CODE: dict[grpc.StatusCode, type[StorytellingError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.ABORTED: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.CANCELLED: CallCancelledError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
}


def from_rpc_error(
    error: grpc.RpcError, *, method: str = "", target: str = "", token_sent: bool | None = None
) -> StorytellingError:
    """Translates a failed call (sync `grpc.RpcError` or `grpc.aio.AioRpcError`) into our hierarchy.
    `token_sent` (whether the call carried a bearer token) lets an authentication error say what is missing."""
    # Failed sync calls are also `grpc.Call`s; `grpc.aio.AioRpcError` has the same accessors.
    has_status = callable(getattr(error, "code", None))
    code = error.code() if has_status else grpc.StatusCode.UNKNOWN
    details = (error.details() if has_status else str(error)) or ""
    kind = _BY_CODE.get(code, InternalError)
    if kind is UnauthenticatedError:
        return UnauthenticatedError(code, details, method=method, target=target, token_sent=token_sent)
    if kind is ResourceExhaustedError:
        delay = retry_delay(error.trailing_metadata()) if has_status else None
        return ResourceExhaustedError(code, details, method=method, target=target, retry_after_s=delay)
    return kind(code, details, method=method, target=target)
