"""Prometheus metrics of the pipeline: jobs, items by stage and outcome, stage latency, queue depth.

The runner reports what happens (`JobMetrics`); the metric names, which the Grafana dashboards and the
alert rules in deploy/helm/storytelling query, live only here. Each job's contributions to the gauges are
tracked, so a job that ends or stops (cancelled, orchestrator shutting down) leaves them as they were.

- `storytelling_pipeline_jobs{state}`: jobs queued (waiting for a slot) and running now.
- `storytelling_pipeline_jobs_ended_total{state}`: jobs that ended, by final state.
- `storytelling_pipeline_items_total{stage,outcome}`: item stages that ran to a result (succeeded, failed).
- `storytelling_pipeline_item_failures_total{stage,reason}`: failed item stages by error kind.
- `storytelling_pipeline_attempts_total{stage}`: attempts, retries included.
- `storytelling_pipeline_stage_seconds{stage,outcome}`: time from an item's first attempt at a stage to its
  result, retries and backoff included.
- `storytelling_pipeline_queue_depth{stage}`: items ready for a stage that have not started it (waiting
  for a worker or for one of the stage's calls in flight).
"""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.registry import Collector

from storytelling.api import vocabulary
from storytelling.runtime.errors import ServiceError

STAGE_BUCKETS = (0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 3600)


def stage_label(stage: int) -> str:
    return vocabulary.label(vocabulary.Stage, stage)


def failure_reason(error: BaseException) -> str:
    """A bounded label: the domain error's kind (Unavailable, DeadlineExceeded...), else Unexpected."""
    return type(error).__name__ if isinstance(error, ServiceError) else "Unexpected"


class PipelineMetrics:
    """The metrics, unregistered unless a registry is given; the service hands them to the runtime's
    registry (`collectors`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.jobs = Gauge(
            "storytelling_pipeline_jobs",
            "Jobs queued for a slot or running now.",
            ["state"],
            registry=registry,
        )
        self.jobs_ended = Counter(
            "storytelling_pipeline_jobs_ended",
            "Jobs that ended, by final state.",
            ["state"],
            registry=registry,
        )
        self.items = Counter(
            "storytelling_pipeline_items",
            "Item stages that ran to a result, by stage and outcome.",
            ["stage", "outcome"],
            registry=registry,
        )
        self.failures = Counter(
            "storytelling_pipeline_item_failures",
            "Item stages that failed, by stage and error kind.",
            ["stage", "reason"],
            registry=registry,
        )
        self.attempts = Counter(
            "storytelling_pipeline_attempts",
            "Stage attempts, retries included.",
            ["stage"],
            registry=registry,
        )
        self.latency = Histogram(
            "storytelling_pipeline_stage_seconds",
            "Time from an item's first attempt at a stage to its result, retries included.",
            ["stage", "outcome"],
            buckets=STAGE_BUCKETS,
            registry=registry,
        )
        self.queue = Gauge(
            "storytelling_pipeline_queue_depth",
            "Items ready for a stage that have not started it.",
            ["stage"],
            registry=registry,
        )
        for state in ("queued", "running"):
            self.jobs.labels(state)  # present at 0 before the first job, so dashboards show a line

    def collectors(self) -> list[Collector]:
        return [
            self.jobs,
            self.jobs_ended,
            self.items,
            self.failures,
            self.attempts,
            self.latency,
            self.queue,
        ]

    def job(self) -> JobMetrics:
        return JobMetrics(self)


class JobMetrics:
    """What one job reports. Works without metrics (`JobMetrics(None)`): every call does nothing."""

    def __init__(self, pipeline: PipelineMetrics | None) -> None:
        self._pipeline = pipeline
        self._state = ""
        self._queued: dict[int, int] = {}
        self._started: set[tuple[int, int]] = set()
        self._first_attempt: dict[tuple[int, int], float] = {}

    def state(self, state: str) -> None:
        """queued (waiting for a job slot), running, or "" (neither: the job ended or stopped)."""
        if self._pipeline is None or state == self._state:
            return
        if self._state:
            self._pipeline.jobs.labels(self._state).dec()
        if state:
            self._pipeline.jobs.labels(state).inc()
        self._state = state

    def ended(self, state: str) -> None:
        if self._pipeline is not None:
            self._pipeline.jobs_ended.labels(state).inc()

    def queued(self, stage: int, count: int = 1) -> None:
        if self._pipeline is None or count == 0:
            return
        self._queued[stage] = self._queued.get(stage, 0) + count
        self._pipeline.queue.labels(stage_label(stage)).inc(count)

    def started(self, stage: int, index: int) -> None:
        """The item left the stage's queue (an attempt began, or its artifact was read back)."""
        if self._pipeline is None or (stage, index) in self._started:
            return
        self._started.add((stage, index))
        if self._queued.get(stage, 0) > 0:
            self._queued[stage] -= 1
            self._pipeline.queue.labels(stage_label(stage)).dec()

    def completed(self, stage: int, index: int, following: int | None) -> None:
        """The item is done with `stage` (run, or its artifact read back) and waits for `following`.
        Only items inside a stage are remembered, so a job's memory does not grow with its items."""
        if self._pipeline is None:
            return
        self.started(stage, index)
        self._started.discard((stage, index))
        if following is not None:
            self.queued(following)

    def attempt(self, stage: int, index: int) -> None:
        if self._pipeline is None:
            return
        self.started(stage, index)
        self._first_attempt.setdefault((stage, index), time.monotonic())
        self._pipeline.attempts.labels(stage_label(stage)).inc()

    def finished(self, stage: int, index: int, error: BaseException | None = None) -> None:
        """The stage ran to a result for the item: succeeded, or failed with `error` after its retries."""
        if self._pipeline is None:
            return
        began = self._first_attempt.pop((stage, index), None)
        label, outcome = stage_label(stage), "succeeded" if error is None else "failed"
        self._pipeline.items.labels(label, outcome).inc()
        if began is not None:
            self._pipeline.latency.labels(label, outcome).observe(time.monotonic() - began)
        if error is not None:
            self._started.discard((stage, index))
            self._pipeline.failures.labels(label, failure_reason(error)).inc()

    def close(self) -> None:
        """Takes what is left of this job out of the gauges (its items will not move while it is stopped)."""
        if self._pipeline is None:
            return
        for stage, count in self._queued.items():
            if count:
                self._pipeline.queue.labels(stage_label(stage)).dec(count)
        self._queued.clear()
        self._started.clear()
        self._first_attempt.clear()
        self.state("")
