"""Python SDK for StorytellingPainter: sync and asyncio clients for the pipeline and its services.

from storytelling.client import Client, job_spec

with Client("localhost:50050") as client:
    job = client.create_job(job_spec(4, mode="cor-guided", seed=7))
    for progress in client.watch_progress(job.id):
        print({s.stage: s.done for s in progress.stages.values()})
    print(client.get_job(job.id).gallery_path)
"""

from storytelling.client.aio import AsyncClient, AsyncEvaluationClient, AsyncRenderClient, AsyncStoryClient
from storytelling.client.channel import DEFAULT_TARGET, ChannelOptions
from storytelling.client.errors import (
    AlreadyExistsError,
    CallCancelledError,
    DeadlineExceededError,
    FailedPreconditionError,
    InternalError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StorytellingError,
    UnauthenticatedError,
    UnavailableError,
    UnimplementedError,
)
from storytelling.client.progress import JobProgress, StageStatus
from storytelling.client.spec import evaluation_item, job_spec
from storytelling.client.sync import Client, EvaluationClient, RenderClient, StoryClient

__all__ = [
    "DEFAULT_TARGET",
    "AlreadyExistsError",
    "AsyncClient",
    "AsyncEvaluationClient",
    "AsyncRenderClient",
    "AsyncStoryClient",
    "CallCancelledError",
    "ChannelOptions",
    "Client",
    "DeadlineExceededError",
    "EvaluationClient",
    "FailedPreconditionError",
    "InternalError",
    "InvalidArgumentError",
    "JobProgress",
    "NotFoundError",
    "PermissionDeniedError",
    "RenderClient",
    "ResourceExhaustedError",
    "StageStatus",
    "StoryClient",
    "StorytellingError",
    "UnauthenticatedError",
    "UnavailableError",
    "UnimplementedError",
    "evaluation_item",
    "job_spec",
]
