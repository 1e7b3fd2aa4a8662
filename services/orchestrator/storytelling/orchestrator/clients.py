"""The stages over gRPC: clients of StoryService, RenderService and EvaluationService.

Each call carries the deadline the runner set (`storytelling.runtime.deadlines`), so the service can
bound its own downstream calls, and gRPC failures come back as `storytelling.runtime.errors`, which is
what the retry policy classifies. Catalog calls (ListPainters...) used to check a job's choices get
CATALOG_TIMEOUT_S.
"""

from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import grpc

from storytelling.runtime import deadlines, errors
from storytelling.runtime.balancing import balanced_channel
from storytelling.runtime.calls import CallerCredentials, CallerFiles
from storytelling.runtime.endpoints import EndpointWatch, Target
from storytelling.v1 import (
    common_pb2,
    evaluation_pb2,
    evaluation_pb2_grpc,
    pipeline_pb2,
    render_pb2,
    render_pb2_grpc,
    story_pb2,
    story_pb2_grpc,
)

from .stages import ProgressCallback

R = TypeVar("R")
S = TypeVar("S")

CATALOG_TIMEOUT_S = 10.0

# The domain error for each status code (the inverse of the runtime's mapping).
_ERRORS = {kind.code: kind for kind in errors.ServiceError.__subclasses__()}


def service_error(service: str, error: grpc.aio.AioRpcError) -> errors.ServiceError:
    kind = _ERRORS.get(error.code().name, errors.Internal)
    return kind(f"{service} answered {error.code().name}: {error.details()}")


async def _call(service: str, call: Awaitable[R]) -> R:
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        raise service_error(service, error) from None


class Connection:
    """A channel to every replica of one service, opened on first use: aio channels belong to the event
    loop that creates them, and services are built before the runtime starts its loop.

    `address` is `host:port`, `dns:///host:port` or `kubernetes:///service:port`
    (`storytelling.runtime.endpoints`); calls rotate over the service's ready replicas, and the channel
    follows them as they come and go. With `credentials`, the channel speaks TLS (checking the Service's
    name in the certificates) and calls carry a bearer token; when the certificate files change, later
    calls go over a new channel (calls in flight finish on the old one).
    """

    def __init__(
        self,
        address: str,
        max_message_mb: int = 64,
        credentials: CallerCredentials | None = None,
        *,
        watch: EndpointWatch | None = None,
    ):
        self.address = address
        size = max_message_mb * 1024 * 1024
        self._credentials = credentials or CallerCredentials(CallerFiles())
        self._generation = self._credentials.generation
        self._balanced = balanced_channel(
            Target.parse(address),
            options=[
                ("grpc.max_receive_message_length", size),
                ("grpc.max_send_message_length", size),
                ("grpc.enable_retries", 0),  # the orchestrator retries itself, with its own policy
                # Reconnect soon after a restarted service is back (gRPC's default backoff reaches
                # 120 s, which would keep items waiting long after the outage).
                ("grpc.initial_reconnect_backoff_ms", 500),
                ("grpc.min_reconnect_backoff_ms", 500),
                ("grpc.max_reconnect_backoff_ms", 5000),
            ],
            open_channel=self._credentials.open_channel,
            tls_name=self._credentials.files.server_name,
            watch=watch,
        )
        self._stubs: dict[type, Any] = {}
        self._stubs_channel: grpc.aio.Channel | None = None

    async def start(self) -> None:
        """Finds the service's replicas before the first call."""
        await self._balanced.start()

    @property
    def channel(self) -> grpc.aio.Channel:
        self._credentials.refresh()
        if self._generation != self._credentials.generation:
            self._generation = self._credentials.generation
            self._balanced.rebuild()
        return self._balanced.current()

    def stub(self, stub_type: type[S]) -> S:
        channel = self.channel
        if channel is not self._stubs_channel:  # the replicas or the certificates changed
            self._stubs, self._stubs_channel = {}, channel
        if stub_type not in self._stubs:
            self._stubs[stub_type] = stub_type(channel)
        return self._stubs[stub_type]

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The bearer token to send, if the services check tokens."""
        return self._credentials.metadata

    async def close(self) -> None:
        await self._balanced.aclose()
        self._stubs, self._stubs_channel = {}, None


def _check_choice(choice: str, known: Iterable[str], field: str, what: str) -> None:
    known = sorted(known)
    if choice and choice not in known:
        raise errors.InvalidArgument(
            f"unknown {what} {choice!r}; known: {', '.join(known) or 'none'}", field=field
        )


class StoryClient:
    def __init__(self, connection: Connection):
        self._connection = connection

    @property
    def _stub(self) -> story_pb2_grpc.StoryServiceStub:
        return self._connection.stub(story_pb2_grpc.StoryServiceStub)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        response = await _call(
            "story",
            self._stub.ListEngines(
                story_pb2.ListEnginesRequest(),
                timeout=deadlines.remaining(CATALOG_TIMEOUT_S),
                metadata=self._connection.metadata,
            ),
        )
        _check_choice(spec.story.engine, (e.name for e in response.engines), "spec.story.engine", "engine")

    async def write(self, options: story_pb2.StoryRequestOptions, index: int, seed: int) -> common_pb2.Story:
        request = story_pb2.WriteStoryRequest(options=options, seed=seed)
        response = await _call(
            "story",
            self._stub.WriteStory(request, timeout=deadlines.remaining(), metadata=self._connection.metadata),
        )
        return response.story


class RenderClient:
    """Renders with RenderStream, so that denoising progress reaches the job's watchers."""

    def __init__(self, connection: Connection):
        self._connection = connection

    @property
    def _stub(self) -> render_pb2_grpc.RenderServiceStub:
        return self._connection.stub(render_pb2_grpc.RenderServiceStub)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        response = await _call(
            "render",
            self._stub.ListPainters(
                render_pb2.ListPaintersRequest(),
                timeout=deadlines.remaining(CATALOG_TIMEOUT_S),
                metadata=self._connection.metadata,
            ),
        )
        _check_choice(
            spec.render.painter, (p.name for p in response.painters), "spec.render.painter", "painter"
        )

    async def render(
        self, request: render_pb2.RenderRequest, progress: ProgressCallback | None = None
    ) -> common_pb2.Image:
        try:
            stream = self._stub.RenderStream(
                request, timeout=deadlines.remaining(), metadata=self._connection.metadata
            )
            async for event in stream:
                if event.HasField("result"):
                    return event.result.image
                if progress is not None:
                    progress(event.progress.step, event.progress.total_steps)
        except grpc.aio.AioRpcError as error:
            raise service_error("render", error) from None
        raise errors.Unavailable("render closed the stream without an image")


class EvaluationClient:
    def __init__(self, connection: Connection):
        self._connection = connection

    @property
    def _stub(self) -> evaluation_pb2_grpc.EvaluationServiceStub:
        return self._connection.stub(evaluation_pb2_grpc.EvaluationServiceStub)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        """Evaluator names are an enum, checked locally; nothing the service must be asked about."""

    async def evaluate(self, request: evaluation_pb2.EvaluateItemRequest) -> evaluation_pb2.ItemEvaluation:
        response = await _call(
            "evaluation",
            self._stub.EvaluateItem(
                request, timeout=deadlines.remaining(), metadata=self._connection.metadata
            ),
        )
        return response.evaluation

    async def summarize(self, request: evaluation_pb2.SummarizeSetRequest) -> evaluation_pb2.SetSummary:
        return await _call(
            "evaluation",
            self._stub.SummarizeSet(
                request, timeout=deadlines.remaining(), metadata=self._connection.metadata
            ),
        )
