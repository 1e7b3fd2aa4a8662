"""The per-RPC wrapper on a real in-process gRPC server, for each of the four kinds of method: status codes,
metrics, logs, deadlines, unparseable requests and the caller's token.

The clock of `handlers` is replaced by one that moves 12.3456 ms per reading, so durations are known
exactly: every RPC here reads it twice (start, finish) and they run one after another.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.message import DecodeError
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from prometheus_client import CollectorRegistry

from storytelling.runtime import auth, deadlines, handlers
from storytelling.runtime.auth import Authenticator, TokenStore
from storytelling.runtime.errors import InvalidArgument, ResourceExhausted
from storytelling.runtime.guard import Guard
from storytelling.runtime.handlers import HandlerWrapper, WrappingServer
from storytelling.runtime.metrics import RpcMetrics
from tests.security import tokens

SERVICE = "test.Echo"
STEP_S = 0.0123456  # one RPC's duration on the stepping clock


class SteppingClock:
    def __init__(self) -> None:
        self.now = 100.0

    def perf_counter(self) -> float:
        self.now += STEP_S
        return self.now


class EchoRequest:
    """Parses like a generated message: `FromString` refuses bytes starting with 0xff."""

    @staticmethod
    def FromString(data: bytes) -> bytes:  # noqa: N802 - the protobuf name
        if data.startswith(b"\xff"):
            raise DecodeError("truncated message")
        return data


def _parse_plain(data: bytes) -> bytes:
    if data.startswith(b"\xff"):
        raise DecodeError("bad wire type")
    return data


def _identity(data: bytes) -> bytes:
    return data


# The client-streaming methods' own (de)serializers mark what passed through them.
def _marked_in(data: bytes) -> bytes:
    return b"<" + data


def _marked_out(data: bytes) -> bytes:
    return data + b">"


async def _answer(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    """What every method does with one request: the request names the behaviour."""
    name = request.removeprefix(b"<")
    if name == b"invalid":
        raise InvalidArgument("must be set", field="text")
    if name == b"boom":
        raise RuntimeError("boom")
    if name == b"quota":
        raise ResourceExhausted("quota spent", field="spec.items", retry_after_s=1.25)
    if name == b"quota-now":
        raise ResourceExhausted("quota spent", retry_after_s=-0.5)  # a clock skew: retry at once
    if name == b"not-found":  # a servicer that sets the status itself instead of raising
        context.set_code(grpc.StatusCode.NOT_FOUND)
        context.set_details("no such echo")
        return b""
    if name == b"deadline":
        return repr(deadlines.remaining()).encode()
    if name == b"peer":
        return context.peer().split(":")[0].encode()
    if name == b"whoami":
        return auth.current().identity.encode() or b"anonymous"
    return request


async def unary(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return await _answer(request, context)


async def stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    for _ in range(2):
        yield await _answer(request, context)


async def collect(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
    return b"+".join([await _answer(r, context) async for r in requests])


async def chat(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    async for request in requests:
        yield await _answer(request, context)


HANDLERS = {
    # A deserializer without __qualname__ (a partial) is named "the request" in errors.
    "Unary": grpc.unary_unary_rpc_method_handler(unary, functools.partial(_parse_plain), _identity),
    "Stream": grpc.unary_stream_rpc_method_handler(stream, EchoRequest.FromString, _identity),
    "Collect": grpc.stream_unary_rpc_method_handler(collect, _marked_in, _marked_out),
    "Chat": grpc.stream_stream_rpc_method_handler(chat, _marked_in, _marked_out),
}


class Echo:
    """A server with the four methods wrapped by the runtime, and a channel to it."""

    def __init__(self, registry: CollectorRegistry | None, guard: Guard | None = None) -> None:
        self.registry = registry
        metrics = RpcMetrics(registry) if registry is not None else None
        self.server = WrappingServer(grpc.aio.server(), HandlerWrapper(metrics, guard))
        self.server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, HANDLERS),))
        self.server.add_registered_method_handlers(SERVICE, HANDLERS)
        self.server.check_complete()
        port = self.server.add_insecure_port("127.0.0.1:0")  # through WrappingServer.__getattr__
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")

    def unary(self, method: str):
        return self.channel.unary_unary(f"/{SERVICE}/{method}", _identity, _identity)

    def stream(self, method: str):
        return self.channel.unary_stream(f"/{SERVICE}/{method}", _identity, _identity)

    def collect(self):
        return self.channel.stream_unary(f"/{SERVICE}/Collect", _identity, _identity)

    def chat(self):
        return self.channel.stream_stream(f"/{SERVICE}/Chat", _identity, _identity)

    def handled(self, method: str, code: str) -> float | None:
        labels = {"grpc_service": SERVICE, "grpc_method": method, "grpc_code": code}
        return self.registry.get_sample_value("grpc_server_handled_total", labels)

    def sample(self, name: str, method: str) -> float | None:
        return self.registry.get_sample_value(name, {"grpc_service": SERVICE, "grpc_method": method})

    async def recorded(self, method: str, code: str, count: float) -> None:
        """Waits for the server to record the RPC: it does so just after the client sees its status."""
        for _ in range(200):
            if self.handled(method, code) == count:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{method} {code}: {self.handled(method, code)} recorded, wanted {count}")


@pytest.fixture
async def echo(monkeypatch):
    monkeypatch.setattr(handlers, "time", SteppingClock())
    service = Echo(CollectorRegistry())
    await service.server.start()
    yield service
    await service.channel.close()
    await service.server.stop(None)


def _rpc_logs(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "storytelling.rpc"]


async def _fails(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await call
    return err.value


async def test_unary_success_is_counted_timed_and_logged_at_debug(echo, caplog):
    caplog.set_level(logging.DEBUG, logger="storytelling.rpc")
    assert await echo.unary("Unary")(b"hello") == b"hello"
    assert await echo.unary("Unary")(b"peer") in (b"ipv4", b"ipv6")  # the servicer got the real context
    await echo.recorded("Unary", "OK", 2.0)
    assert echo.sample("grpc_server_handling_seconds_sum", "Unary") == pytest.approx(2 * STEP_S)
    assert echo.sample("grpc_server_in_flight", "Unary") == 0.0
    records = _rpc_logs(caplog)
    assert [r.getMessage() for r in records] == ["rpc ok", "rpc ok"]
    assert all(r.levelno == logging.DEBUG for r in records)
    assert (records[0].method, records[0].duration_ms) == ("/test.Echo/Unary", 12.346)


async def test_a_domain_error_is_its_status_counted_and_logged_with_its_details(echo, caplog):
    caplog.set_level(logging.INFO, logger="storytelling.rpc")
    error = await _fails(echo.unary("Unary")(b"invalid"))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "text: must be set")
    await echo.recorded("Unary", "INVALID_ARGUMENT", 1.0)
    assert echo.handled("Unary", "OK") is None
    assert echo.sample("grpc_server_in_flight", "Unary") == 0.0
    [record] = _rpc_logs(caplog)
    assert (record.getMessage(), record.levelno) == ("rpc failed", logging.INFO)
    assert (record.method, record.code, record.details, record.duration_ms) == (
        "/test.Echo/Unary",
        "INVALID_ARGUMENT",
        "text: must be set",
        12.346,
    )


async def test_an_unexpected_error_is_internal_and_logged_with_its_traceback(echo, caplog):
    caplog.set_level(logging.INFO, logger="storytelling.rpc")
    error = await _fails(echo.unary("Unary")(b"boom"))
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "internal error: RuntimeError: boom")
    await echo.recorded("Unary", "INTERNAL", 1.0)
    unhandled, failed = _rpc_logs(caplog)
    assert (unhandled.getMessage(), unhandled.levelno) == (
        "unhandled error in /test.Echo/Unary",
        logging.ERROR,
    )
    assert unhandled.exc_info is not None and str(unhandled.exc_info[1]) == "boom"
    assert (failed.getMessage(), failed.code, failed.details) == (
        "rpc failed",
        "INTERNAL",
        "internal error: RuntimeError: boom",
    )


async def test_a_status_set_on_the_context_is_what_metrics_and_logs_record(echo, caplog):
    caplog.set_level(logging.INFO, logger="storytelling.rpc")
    error = await _fails(echo.unary("Unary")(b"not-found"))
    assert (error.code(), error.details()) == (grpc.StatusCode.NOT_FOUND, "no such echo")
    await echo.recorded("Unary", "NOT_FOUND", 1.0)
    assert echo.handled("Unary", "OK") is None
    [record] = _rpc_logs(caplog)
    # The wrapper knows the code from the context; the details stayed the servicer's own.
    assert (record.getMessage(), record.code, record.details) == ("rpc failed", "NOT_FOUND", "")


async def test_resource_exhausted_carries_its_retry_delay_as_retry_info(echo):
    for request, details, delay in [
        (b"quota", "spec.items: quota spent", (1, 250_000_000)),
        (b"quota-now", "quota spent", (0, 0)),  # never a negative delay
    ]:
        error = await _fails(echo.unary("Unary")(request, timeout=5))
        assert (error.code(), error.details()) == (grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        status = rpc_status.from_call(error)
        assert (status.code, status.message) == (grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], details)
        info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info)
        assert (info.retry_delay.seconds, info.retry_delay.nanos) == delay
    await echo.recorded("Unary", "RESOURCE_EXHAUSTED", 2.0)


async def test_unparseable_bytes_are_invalid_argument_naming_the_type_on_both_unary_kinds(echo, caplog):
    caplog.set_level(logging.INFO, logger="storytelling.rpc")
    unary = await _fails(echo.unary("Unary")(b"\xff\x01"))
    assert (unary.code(), unary.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "request: cannot parse the bytes as the request: bad wire type",
    )
    streamed = await _fails(echo.stream("Stream")(b"\xff\x01").read())
    assert (streamed.code(), streamed.details()) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        "request: cannot parse the bytes as EchoRequest: truncated message",
    )
    await echo.recorded("Unary", "INVALID_ARGUMENT", 1.0)
    await echo.recorded("Stream", "INVALID_ARGUMENT", 1.0)
    assert [(r.method, r.code, r.details) for r in _rpc_logs(caplog)] == [
        (
            "/test.Echo/Unary",
            "INVALID_ARGUMENT",
            "request: cannot parse the bytes as the request: bad wire type",
        ),
        (
            "/test.Echo/Stream",
            "INVALID_ARGUMENT",
            "request: cannot parse the bytes as EchoRequest: truncated message",
        ),
    ]
    assert await echo.unary("Unary")(b"fine") == b"fine"  # the service stays up


async def test_server_streaming_sees_the_deadline_and_is_counted_and_logged(echo, caplog):
    caplog.set_level(logging.DEBUG, logger="storytelling.rpc")
    assert [r async for r in echo.stream("Stream")(b"peer")][0] in (b"ipv4", b"ipv6")
    left = [float(r) async for r in echo.stream("Stream")(b"deadline", timeout=5.0)]
    assert len(left) == 2 and all(3.0 < s <= 5.1 for s in left)  # minus transit, plus clock granularity
    assert [r async for r in echo.stream("Stream")(b"deadline")] == [b"None", b"None"]
    error = await _fails(echo.stream("Stream")(b"invalid").read())
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "text: must be set")
    await echo.recorded("Stream", "OK", 3.0)
    await echo.recorded("Stream", "INVALID_ARGUMENT", 1.0)
    assert echo.sample("grpc_server_handling_seconds_sum", "Stream") == pytest.approx(4 * STEP_S)
    assert echo.sample("grpc_server_in_flight", "Stream") == 0.0
    records = _rpc_logs(caplog)
    assert [(r.getMessage(), r.method) for r in records] == [("rpc ok", "/test.Echo/Stream")] * 3 + [
        ("rpc failed", "/test.Echo/Stream")
    ]
    assert records[-1].duration_ms == 12.346


async def test_client_streaming_is_wrapped_like_a_unary_call(echo, caplog):
    caplog.set_level(logging.DEBUG, logger="storytelling.rpc")
    # The method's own deserializer and serializer are kept: "<" marks each request, ">" the response.
    assert await echo.collect()(iter([b"a", b"b", b"c"])) == b"<a+<b+<c>"
    error = await _fails(echo.collect()(iter([b"a", b"invalid"])))
    assert (error.code(), error.details()) == (grpc.StatusCode.INVALID_ARGUMENT, "text: must be set")
    await echo.recorded("Collect", "OK", 1.0)
    await echo.recorded("Collect", "INVALID_ARGUMENT", 1.0)
    assert echo.sample("grpc_server_handling_seconds_sum", "Collect") == pytest.approx(2 * STEP_S)
    assert [(r.getMessage(), r.method) for r in _rpc_logs(caplog)] == [
        ("rpc ok", "/test.Echo/Collect"),
        ("rpc failed", "/test.Echo/Collect"),
    ]


async def test_bidirectional_streaming_is_wrapped_like_server_streaming(echo, caplog):
    caplog.set_level(logging.DEBUG, logger="storytelling.rpc")
    assert [r async for r in echo.chat()(iter([b"a", b"b"]))] == [b"<a>", b"<b>"]
    call = echo.chat()(iter([b"a", b"boom"]))
    assert await call.read() == b"<a>"
    error = await _fails(call.read())
    assert (error.code(), error.details()) == (grpc.StatusCode.INTERNAL, "internal error: RuntimeError: boom")
    await echo.recorded("Chat", "OK", 1.0)
    await echo.recorded("Chat", "INTERNAL", 1.0)
    assert echo.sample("grpc_server_in_flight", "Chat") == 0.0
    assert [(r.getMessage(), r.method) for r in _rpc_logs(caplog) if r.getMessage().startswith("rpc")] == [
        ("rpc ok", "/test.Echo/Chat"),
        ("rpc failed", "/test.Echo/Chat"),
    ]


async def test_a_server_without_metrics_serves_every_kind():
    service = Echo(None)
    await service.server.start()
    try:
        assert await service.unary("Unary")(b"x") == b"x"
        assert [r async for r in service.stream("Stream")(b"y")] == [b"y", b"y"]
        assert await service.collect()(iter([b"a", b"b"])) == b"<a+<b>"
        assert [r async for r in service.chat()(iter([b"z"]))] == [b"<z>"]
        assert service.server.services == ["test.Echo"]
    finally:
        await service.channel.close()
        await service.server.stop(None)


class _TableLess(grpc.GenericRpcHandler):
    """A generic handler as hand-written code would add it: no method table, no service_name."""

    def service(self, handler_call_details):
        return None


async def test_handlers_added_without_a_method_table_are_refused_by_name():
    server = WrappingServer(grpc.aio.server(), HandlerWrapper(None))
    server.add_generic_rpc_handlers((_TableLess(), grpc.method_handlers_generic_handler(SERVICE, HANDLERS)))
    server.add_registered_method_handlers(SERVICE, HANDLERS)  # takes its own generic handler off the list
    with pytest.raises(TypeError) as err:
        server.check_complete()
    assert str(err.value) == (
        "register servicers with the generated add_*_to_server functions; "
        "1 generic handler(s) came without a method table"
    )
    assert server.services == ["test.Echo"]


@pytest.fixture
async def guarded(tmp_path):
    """The echo server behind tokens: every method of test.Echo needs the `write` scope."""
    writer, reader = tokens.make("alice", "read", "write"), tokens.make("ci", "read")
    store = TokenStore(tokens.write(tmp_path / "tokens.json", writer, reader))
    service = Echo(CollectorRegistry(), Guard(Authenticator(store), None))
    await service.server.start()
    yield service, writer, reader
    await service.channel.close()
    await service.server.stop(None)


async def test_every_kind_of_method_runs_as_the_caller_its_token_names(guarded):
    echo, writer, _ = guarded
    metadata = writer.metadata
    assert await echo.unary("Unary")(b"whoami", metadata=metadata) == b"alice"
    assert [r async for r in echo.stream("Stream")(b"whoami", metadata=metadata)] == [b"alice", b"alice"]
    assert await echo.collect()(iter([b"whoami"]), metadata=metadata) == b"alice>"
    assert [r async for r in echo.chat()(iter([b"whoami"]), metadata=metadata)] == [b"alice>"]


async def test_every_kind_of_method_refuses_a_missing_token_or_scope_before_reading_the_request(guarded):
    echo, _, reader = guarded
    calls = {
        "Unary": lambda metadata: echo.unary("Unary")(b"\xff\x01", metadata=metadata),  # unparseable too
        "Stream": lambda metadata: echo.stream("Stream")(b"\xff\x01", metadata=metadata).read(),
        "Collect": lambda metadata: echo.collect()(iter([b"whoami"]), metadata=metadata),
        "Chat": lambda metadata: echo.chat()(iter([b"whoami"]), metadata=metadata).read(),
    }
    for method, call in calls.items():
        missing = await _fails(call(None))
        assert (missing.code(), missing.details()) == (grpc.StatusCode.UNAUTHENTICATED, auth.MISSING_TOKEN)
        denied = await _fails(call(reader.metadata))
        assert (denied.code(), denied.details()) == (
            grpc.StatusCode.PERMISSION_DENIED,
            f"identity 'ci' lacks the 'write' scope that {method} needs",
        )
        await echo.recorded(method, "UNAUTHENTICATED", 1.0)
        await echo.recorded(method, "PERMISSION_DENIED", 1.0)
