"""What the runtime adds to every RPC: authentication, domain errors to status codes, deadlines, metrics,
logs.

Method handlers are wrapped once, when a service registers them, instead of through a
`grpc.aio.ServerInterceptor`: the aio interceptor machinery runs Python per RPC on top of the work
itself, and measured 10-15% of a trivial RPC's throughput (bench/bench_runtime.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.protobuf import duration_pb2
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from storytelling.runtime import auth, deadlines
from storytelling.runtime.errors import ResourceExhausted, ServiceError
from storytelling.runtime.guard import Check, Guard
from storytelling.runtime.metrics import MethodMetrics, RpcMetrics

log = logging.getLogger("storytelling.rpc")


class MalformedRequest:
    """Stands in for a request whose bytes did not parse, so the handler can answer INVALID_ARGUMENT."""

    def __init__(self, type_name: str, error: Exception) -> None:
        self.message = f"cannot parse the bytes as {type_name}: {error}"


def _tolerant(deserializer: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserializer is None:
        return None
    type_name = getattr(deserializer, "__qualname__", "the request").split(".")[0]

    def parse(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return MalformedRequest(type_name, exc)

    return parse


class _Outcome:
    """Tracks one RPC's status code and timing from start to finish."""

    __slots__ = ("metrics", "method", "start", "code", "details")

    def __init__(self, metrics: MethodMetrics | None, method: str) -> None:
        self.metrics = metrics
        self.method = method
        self.start = time.perf_counter()
        self.code = "OK"
        self.details = ""
        if metrics is not None:
            metrics.in_flight.inc()

    async def fail(self, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        """Records `exc` and aborts the RPC with the matching status (AbortError propagates)."""
        if isinstance(exc, ServiceError):
            self.code, self.details = exc.code, exc.details
        else:
            self.code, self.details = "INTERNAL", f"internal error: {type(exc).__name__}: {exc}"
            log.error("unhandled error in %s", self.method, exc_info=exc)
        if isinstance(exc, ResourceExhausted) and exc.retry_after_s is not None:
            status = _with_retry_info(self.code, self.details, exc.retry_after_s)
            await context.abort(status.code, status.details, status.trailing_metadata)
        await context.abort(grpc.StatusCode[self.code], self.details)

    def finish(self, context: grpc.aio.ServicerContext) -> None:
        if self.code == "OK":
            code = context.code()
            if code is not None and code != grpc.StatusCode.OK:
                self.code = code.name
        seconds = time.perf_counter() - self.start
        if self.metrics is not None:
            self.metrics.in_flight.dec()
            self.metrics.latency.observe(seconds)
            self.metrics.count(self.code)
        if self.code != "OK":
            log.info(
                "rpc failed",
                extra={
                    "method": self.method,
                    "code": self.code,
                    "details": self.details,
                    "duration_ms": round(seconds * 1000, 3),
                },
            )
        elif log.isEnabledFor(logging.DEBUG):
            log.debug("rpc ok", extra={"method": self.method, "duration_ms": round(seconds * 1000, 3)})


def _with_retry_info(code: str, details: str, retry_after_s: float) -> grpc.Status:
    """The status with google.rpc.RetryInfo in its details (the `grpc-status-details-bin` trailer)."""
    delay = duration_pb2.Duration()
    delay.FromNanoseconds(max(0, round(retry_after_s * 1e9)))
    detail = status_pb2.Status(code=code_pb2.Code.Value(code), message=details)
    detail.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return rpc_status.to_status(detail)


async def _reject_malformed(request: Any, context: grpc.aio.ServicerContext, outcome: _Outcome) -> None:
    outcome.code, outcome.details = "INVALID_ARGUMENT", f"request: {request.message}"
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, outcome.details)


class HandlerWrapper:
    """Wraps method handlers with the runtime's per-RPC behaviour."""

    def __init__(self, metrics: RpcMetrics | None, guard: Guard | None = None) -> None:
        self._metrics = metrics
        self._guard = guard

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        metrics = self._metrics.for_method(method) if self._metrics else None
        check = self._guard.for_method(method) if self._guard else None
        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(
                _unary(handler.unary_unary, metrics, method, check),
                _tolerant(handler.request_deserializer),
                handler.response_serializer,
            )
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(
                _streaming(handler.unary_stream, metrics, method, check),
                _tolerant(handler.request_deserializer),
                handler.response_serializer,
            )
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(
                _unary(handler.stream_unary, metrics, method, check),
                handler.request_deserializer,
                handler.response_serializer,
            )
        return grpc.stream_stream_rpc_method_handler(
            _streaming(handler.stream_stream, metrics, method, check),
            handler.request_deserializer,
            handler.response_serializer,
        )


class WrappingServer:
    """The server a Service registers on: generated `add_*_to_server` functions land here.

    Generated code calls `add_generic_rpc_handlers` then `add_registered_method_handlers` with the
    same handlers; the second carries them as a dict, so that is where they are wrapped and passed on.
    """

    def __init__(self, server: grpc.aio.Server, wrapper: HandlerWrapper) -> None:
        self._server = server
        self._wrapper = wrapper
        self._pending: list[grpc.GenericRpcHandler] = []
        self.services: list[str] = []

    def add_generic_rpc_handlers(self, handlers: tuple[grpc.GenericRpcHandler, ...]) -> None:
        self._pending.extend(handlers)

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        wrapped = {name: self._wrapper.wrap(f"/{service}/{name}", h) for name, h in handlers.items()}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, wrapped),))
        self._server.add_registered_method_handlers(service, wrapped)
        self._pending = [h for h in self._pending if getattr(h, "service_name", lambda: None)() != service]
        self.services.append(service)

    def check_complete(self) -> None:
        """Refuses handlers added without their method table: they would bypass the runtime."""
        if self._pending:
            raise TypeError(
                "register servicers with the generated add_*_to_server functions; "
                f"{len(self._pending)} generic handler(s) came without a method table"
            )

    def __getattr__(self, name: str) -> Any:
        return getattr(self._server, name)


def _unary(inner: Callable, metrics: MethodMetrics | None, method: str, check: Check | None) -> Callable:
    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> Any:
        outcome = _Outcome(metrics, method)
        try:
            principal = check(context) if check is not None else None  # before anything reads the request
            if isinstance(request, MalformedRequest):
                await _reject_malformed(request, context, outcome)
            with deadlines.scope(context.time_remaining()), auth.acting_as(principal):
                return await inner(request, context)
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001 - every error becomes a status, none escapes
            await outcome.fail(context, exc)
        finally:
            outcome.finish(context)

    return behavior


def _streaming(inner: Callable, metrics: MethodMetrics | None, method: str, check: Check | None) -> Callable:
    async def behavior(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        outcome = _Outcome(metrics, method)
        try:
            principal = check(context) if check is not None else None
            if isinstance(request, MalformedRequest):
                await _reject_malformed(request, context, outcome)
            with deadlines.scope(context.time_remaining()), auth.acting_as(principal):
                async for response in inner(request, context):
                    yield response
        except (grpc.aio.AbortError, asyncio.CancelledError):
            raise
        except Exception as exc:  # noqa: BLE001
            await outcome.fail(context, exc)
        finally:
            outcome.finish(context)

    return behavior
