"""Request building and retry timing shared by the sync and asyncio clients."""

from __future__ import annotations

from collections.abc import Iterable

from storytelling.api import vocabulary
from storytelling.v1 import pipeline_pb2


def list_jobs(states: Iterable[str | pipeline_pb2.JobState], page_size: int) -> pipeline_pb2.ListJobsRequest:
    parsed = [vocabulary.parse(vocabulary.JobState, s) if isinstance(s, str) else s for s in states]
    return pipeline_pb2.ListJobsRequest(states=parsed, page_size=page_size)


def list_items(
    job_id: str, states: Iterable[str | pipeline_pb2.ItemState], results: bool, page_size: int
) -> pipeline_pb2.ListItemsRequest:
    parsed = [vocabulary.parse(vocabulary.ItemState, s) if isinstance(s, str) else s for s in states]
    return pipeline_pb2.ListItemsRequest(
        job_id=job_id, states=parsed, omit_results=not results, page_size=page_size
    )


def watch_job(job_id: str, after_sequence: int, results: bool) -> pipeline_pb2.WatchJobRequest:
    return pipeline_pb2.WatchJobRequest(
        job_id=job_id, after_sequence=after_sequence, omit_results=not results
    )


def backoff(failures: int) -> float:
    """Seconds before reconnect number `failures` (0-based): 0.25, 0.5, 1, 2, 4, then 5."""
    return min(0.25 * 2**failures, 5.0)
