"""Blocking clients: `Client` for PipelineService and thin helpers for the story, render and evaluation
services. Every failed call raises a `StorytellingError` subclass (see `errors`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar, Self

import grpc
from storytelling.api.vocabulary import default_address
from storytelling.client import requests
from storytelling.client.channel import DEFAULT_TARGET, ChannelOptions, open_channel
from storytelling.client.errors import UnavailableError, from_rpc_error
from storytelling.client.progress import JobProgress
from storytelling.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    pipeline_pb2,
    pipeline_pb2_grpc,
    render_pb2,
    render_pb2_grpc,
    story_pb2,
    story_pb2_grpc,
)


class _Service:
    _stub_type: ClassVar[type]
    default_target: ClassVar[str]

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float | None = 30.0,
        options: ChannelOptions | None = None,
        metadata: Sequence[tuple[str, str]] = (),
    ) -> None:
        """`timeout` is the deadline of each unary call in seconds (None: no deadline)."""
        self.target = target or self.default_target
        self.timeout = timeout
        options = options or ChannelOptions()
        self._metadata = (*options.call_metadata(), *metadata)
        self._token_sent = bool(options.token)
        self._channel = open_channel(self.target, options)
        self._stub = self._stub_type(self._channel)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _call(self, method: str, request: Any, timeout: float | None = None) -> Any:
        try:
            return getattr(self._stub, method)(
                request, timeout=timeout or self.timeout, metadata=self._metadata
            )
        except grpc.RpcError as error:
            raise from_rpc_error(
                error, method=method, target=self.target, token_sent=self._token_sent
            ) from None

    def _stream(self, method: str, request: Any, timeout: float | None = None) -> Iterator[Any]:
        call = getattr(self._stub, method)(request, timeout=timeout, metadata=self._metadata)
        try:
            yield from call
        except grpc.RpcError as error:
            raise from_rpc_error(
                error, method=method, target=self.target, token_sent=self._token_sent
            ) from None
        finally:
            call.cancel()


class Client(_Service):
    """PipelineService: create, watch, get, list and cancel jobs, or run one item synchronously."""

    _stub_type = pipeline_pb2_grpc.PipelineServiceStub
    default_target = DEFAULT_TARGET

    def create_job(
        self, spec: pipeline_pb2.JobSpec, *, request_id: str = "", timeout: float | None = None
    ) -> pipeline_pb2.Job:
        """Starts a job; a repeated call with the same `request_id` returns the existing job."""
        request = pipeline_pb2.CreateJobRequest(spec=spec, request_id=request_id)
        return self._call("CreateJob", request, timeout)

    def get_job(self, job_id: str, *, items: bool = True, timeout: float | None = None) -> pipeline_pb2.Job:
        """The job, with its items unless `items` is False (a job of many items: see `list_items`)."""
        return self._call("GetJob", pipeline_pb2.GetJobRequest(job_id=job_id, omit_items=not items), timeout)

    def list_items(
        self,
        job_id: str,
        *,
        states: Iterable[str | pipeline_pb2.ItemState] = (),
        results: bool = True,
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[pipeline_pb2.Item]:
        """The job's items in index order, fetching pages as needed; `results` False leaves out
        stories, images and evaluations."""
        request = requests.list_items(job_id, states, results, page_size)
        while True:
            response: pipeline_pb2.ListItemsResponse = self._call("ListItems", request, timeout)
            yield from response.items
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def list_jobs(
        self,
        *,
        states: Iterable[str | pipeline_pb2.JobState] = (),
        page_size: int = 0,
        timeout: float | None = None,
    ) -> Iterator[pipeline_pb2.Job]:
        """Every job (newest first, as the server orders them), fetching pages as needed."""
        request = requests.list_jobs(states, page_size)
        while True:
            response: pipeline_pb2.ListJobsResponse = self._call("ListJobs", request, timeout)
            yield from response.jobs
            if not response.next_page_token:
                return
            request.page_token = response.next_page_token

    def cancel_job(self, job_id: str, *, timeout: float | None = None) -> pipeline_pb2.Job:
        """Raises FailedPreconditionError for a job that already ended."""
        return self._call("CancelJob", pipeline_pb2.CancelJobRequest(job_id=job_id), timeout)

    def run_item(self, spec: pipeline_pb2.JobSpec, *, timeout: float | None = 600.0) -> pipeline_pb2.Item:
        """Runs one item through every stage and returns it; slow, hence its own long deadline."""
        return self._call("RunItem", pipeline_pb2.RunItemRequest(spec=spec), timeout)

    def watch(
        self, job_id: str, *, after_sequence: int = 0, reconnects: int = 5, results: bool = True
    ) -> Iterator[pipeline_pb2.JobEvent]:
        """Yields the job's events until it ends: the items that changed after `after_sequence` (their
        latest state), a snapshot of the job, then live changes and progress. `results` False leaves
        stories, images and evaluations out of item events.

        When the orchestrator becomes unreachable (a restart), the stream resumes after the last change
        seen, up to `reconnects` times in a row with backoff, so no change is lost or repeated.
        """
        failures = 0
        while True:
            request = requests.watch_job(job_id, after_sequence, results)
            try:
                for event in self._stream("WatchJob", request):
                    after_sequence, failures = max(after_sequence, event.sequence), 0
                    yield event
                return
            except UnavailableError:
                if failures >= reconnects:
                    raise
                time.sleep(requests.backoff(failures))
                failures += 1

    def watch_progress(self, job_id: str, *, results: bool = False) -> Iterator[JobProgress]:
        """Yields the job's progress, per stage as the orchestrator counts it, after every event: one
        object, updated in place. Its items hold their stories, images and evaluations with `results`."""
        progress = JobProgress.for_job(self.get_job(job_id, items=False))
        for event in self.watch(job_id, results=results):
            progress.update(event)
            yield progress

    def wait(self, job_id: str, *, items: bool = True) -> pipeline_pb2.Job:
        """Blocks until the job ends and returns it, with its items unless `items` is False."""
        for _ in self.watch(job_id, results=False):
            pass
        return self.get_job(job_id, items=items)


class StoryClient(_Service):
    _stub_type = story_pb2_grpc.StoryServiceStub
    default_target = default_address("story")

    def write_story(
        self, options: story_pb2.StoryRequestOptions, *, seed: int | None = None, timeout: float | None = None
    ) -> story_pb2.WriteStoryResponse:
        return self._call("WriteStory", story_pb2.WriteStoryRequest(options=options, seed=seed), timeout)

    def write_stories(
        self, options: story_pb2.StoryRequestOptions, count: int, *, seed: int | None = None
    ) -> Iterator[story_pb2.WriteStoriesResponse]:
        request = story_pb2.WriteStoriesRequest(options=options, count=count, seed=seed)
        return self._stream("WriteStories", request)

    def list_engines(self) -> story_pb2.ListEnginesResponse:
        return self._call("ListEngines", story_pb2.ListEnginesRequest())

    def list_pools(self) -> story_pb2.ListPoolsResponse:
        return self._call("ListPools", story_pb2.ListPoolsRequest())


class RenderClient(_Service):
    _stub_type = render_pb2_grpc.RenderServiceStub
    default_target = default_address("render")

    def render(
        self, request: render_pb2.RenderRequest, *, timeout: float | None = 600.0
    ) -> render_pb2.RenderResponse:
        return self._call("Render", request, timeout)

    def render_stream(self, request: render_pb2.RenderRequest) -> Iterator[render_pb2.RenderEvent]:
        return self._stream("RenderStream", request)

    def list_painters(self) -> render_pb2.ListPaintersResponse:
        return self._call("ListPainters", render_pb2.ListPaintersRequest())


class EvaluationClient(_Service):
    _stub_type = evaluation_pb2_grpc.EvaluationServiceStub
    default_target = default_address("evaluation")

    def evaluate_item(
        self, request: evaluation_pb2.EvaluateItemRequest, *, timeout: float | None = 600.0
    ) -> evaluation_pb2.ItemEvaluation:
        return self._call("EvaluateItem", request, timeout).evaluation

    def evaluate_set(
        self, request: evaluation_pb2.EvaluateSetRequest
    ) -> Iterator[evaluation_pb2.EvaluateSetEvent]:
        """One event per item as it completes, then the set summary."""
        return self._stream("EvaluateSet", request)

    def diversity(
        self, stories: Sequence[str], options: evaluation_pb2.DiversityOptions | None = None
    ) -> evaluation_pb2.DiversityResult:
        return self._call("Diversity", evaluation_pb2.DiversityRequest(stories=stories, options=options))

    def list_evaluators(self) -> evaluation_pb2.ListEvaluatorsResponse:
        return self._call("ListEvaluators", evaluation_pb2.ListEvaluatorsRequest())
