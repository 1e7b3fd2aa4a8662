"""Jobs on a local stack of one profile, timed per item: shared by the default-run and profile benches."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field

from storytelling.client import Client, job_spec
from storytelling.v1 import pipeline_pb2

DONE = (pipeline_pb2.ITEM_STATE_SUCCEEDED, pipeline_pb2.ITEM_STATE_FAILED)


@dataclass
class JobRun:
    seed: int
    seconds: float
    item_done_s: list[float] = field(default_factory=list)  # since CreateJob, in completion order
    succeeded: int = 0
    failed: int = 0
    salvaged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def items(self) -> int:
        return self.succeeded + self.failed


def run_job(address: str, items: int, seed: int, timeout_s: float = 3600.0) -> JobRun:
    """Creates a default job (what `make run` asks for) and follows it to the end."""
    with Client(address, timeout=60) as client:
        start = time.perf_counter()
        job = client.create_job(job_spec(items, seed=seed))
        done_at: dict[int, float] = {}
        for event in client.watch(job.id):
            if event.HasField("item") and event.item.state in DONE and event.item.index not in done_at:
                done_at[event.item.index] = time.perf_counter() - start
            if time.perf_counter() - start > timeout_s:
                raise TimeoutError(f"job {job.id} (seed {seed}) still running after {timeout_s:.0f} s")
        seconds = time.perf_counter() - start
        job = client.get_job(job.id)
    run = JobRun(seed, seconds, sorted(done_at.values()))
    for item in job.items:
        if item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
            run.succeeded += 1
            run.salvaged += item.story.provenance.salvaged
        else:
            run.failed += 1
            run.errors.append(f"seed {seed} item {item.index}: {item.error}")
    return run


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]
