"""Domain errors raised by core code, mapped to gRPC status codes by the runtime.

The classes carry the status code's *name* only, so core modules stay free of any transport import.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """An error a caller can act on. `field` names the request field at fault, if any."""

    code: ClassVar[str] = "UNKNOWN"

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.message = message
        self.field = field
        super().__init__(self.details)

    @property
    def details(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidArgument(ServiceError):
    code = "INVALID_ARGUMENT"


class NotFound(ServiceError):
    code = "NOT_FOUND"


class AlreadyExists(ServiceError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(ServiceError):
    code = "FAILED_PRECONDITION"


class ResourceExhausted(ServiceError):
    """A limit or quota was hit. `retry_after_s`, when known, is when a retry can succeed: the runtime
    sends it as google.rpc.RetryInfo in the status details."""

    code = "RESOURCE_EXHAUSTED"

    def __init__(self, message: str, *, field: str | None = None, retry_after_s: float | None = None) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, field=field)


class Unauthenticated(ServiceError):
    """No credentials, or credentials the service does not accept. Never names the credential itself."""

    code = "UNAUTHENTICATED"


class PermissionDenied(ServiceError):
    """The caller is known but may not do this (scope, ownership, client certificate identity)."""

    code = "PERMISSION_DENIED"


class Unavailable(ServiceError):
    """A dependency (engine, downstream service) cannot be reached; retrying later may succeed."""

    code = "UNAVAILABLE"


class DeadlineExceeded(ServiceError):
    code = "DEADLINE_EXCEEDED"


class Cancelled(ServiceError):
    code = "CANCELLED"


class Unimplemented(ServiceError):
    code = "UNIMPLEMENTED"


class Internal(ServiceError):
    code = "INTERNAL"
