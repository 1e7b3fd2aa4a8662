"""Per-identity quotas: jobs running at once, items per job, and items per hour (a token bucket).

Transport-free: `admit` raises `ResourceExhausted` with the field and, where waiting helps, the delay
after which a retry can succeed (the runtime sends it as google.rpc.RetryInfo). Admission is one
synchronous step (check, then count), so concurrent requests on the event loop cannot both slip under
a limit. The counters are exported to Prometheus by identity (`collect`).
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from pydantic import BaseModel, Field

from storytelling.runtime.errors import ResourceExhausted

HOUR_S = 3600.0


class QuotaLimits(BaseModel):
    """Limits of one identity; None means unlimited."""

    running_jobs: int | None = Field(None, ge=1, description="jobs queued or running at once")
    items_per_job: int | None = Field(None, ge=1, description="largest job")
    items_per_hour: int | None = Field(
        None, ge=1, description="items started per hour; a token bucket holding up to one hour's worth"
    )


@dataclass
class TokenBucket:
    """Holds up to `capacity` items and refills `capacity` per hour, continuously."""

    capacity: float
    clock: Callable[[], float]
    level: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.level, self.updated = self.capacity, self.clock()

    def _refill(self) -> None:
        now = self.clock()
        self.level = min(self.capacity, self.level + (now - self.updated) * self.capacity / HOUR_S)
        self.updated = now

    def available(self) -> float:
        self._refill()
        return self.level

    def peek(self) -> float:
        """What `available` would say, without updating the bucket (for readers on other threads)."""
        elapsed = self.clock() - self.updated
        return min(self.capacity, self.level + elapsed * self.capacity / HOUR_S)

    def wait_for(self, items: int) -> float:
        """Seconds until `items` are available (0: now)."""
        missing = items - self.available()
        return 0.0 if missing <= 0 else missing * HOUR_S / self.capacity

    def take(self, items: int) -> None:
        self._refill()
        self.level -= items


@dataclass
class _Usage:
    running: int = 0
    admitted_items: int = 0
    rejections: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    bucket: TokenBucket | None = None


class Quotas:
    """The quotas of every identity: `default` limits, with `overrides` for named identities."""

    def __init__(
        self,
        default: QuotaLimits | None = None,
        overrides: dict[str, QuotaLimits] | None = None,
        *,
        running_retry_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.default = default or QuotaLimits()
        self.overrides = overrides or {}
        self.running_retry_s = running_retry_s
        self._clock = clock
        self._usage: dict[str, _Usage] = defaultdict(_Usage)

    def limits(self, identity: str) -> QuotaLimits:
        return self.overrides.get(identity, self.default)

    def _bucket(self, identity: str, usage: _Usage) -> TokenBucket | None:
        per_hour = self.limits(identity).items_per_hour
        if per_hour is None:
            return None
        if usage.bucket is None or usage.bucket.capacity != per_hour:
            usage.bucket = TokenBucket(per_hour, self._clock)
        return usage.bucket

    def admit(self, identity: str, items: int) -> None:
        """Counts a new job of `items` items for `identity`, or raises ResourceExhausted saying which
        quota and when to retry. Pair every admitted job with one `release`."""
        limits, usage = self.limits(identity), self._usage[identity]
        who = f"identity {identity!r}" if identity else "the anonymous caller"
        if limits.items_per_job is not None and items > limits.items_per_job:
            self._reject(usage, "items_per_job")
            raise ResourceExhausted(
                f"{items} items exceed the quota of {limits.items_per_job} items per job for {who}",
                field="spec.items",
            )
        if limits.running_jobs is not None and usage.running >= limits.running_jobs:
            self._reject(usage, "running_jobs")
            raise ResourceExhausted(
                f"{who} has {usage.running} jobs queued or running, its quota; retry when one ends",
                retry_after_s=self.running_retry_s,
            )
        bucket = self._bucket(identity, usage)
        if bucket is not None:
            if items > bucket.capacity:
                self._reject(usage, "items_per_hour")
                raise ResourceExhausted(
                    f"{items} items exceed the quota of {bucket.capacity:.0f} items per hour for {who}",
                    field="spec.items",
                )
            if (wait := bucket.wait_for(items)) > 0:
                self._reject(usage, "items_per_hour")
                raise ResourceExhausted(
                    f"{who} has used its quota of {bucket.capacity:.0f} items per hour; "
                    f"{math.floor(bucket.available())} are left now, {items} asked for; "
                    f"retry in {math.ceil(wait)} s",
                    retry_after_s=wait,
                )
            bucket.take(items)
        usage.running += 1
        usage.admitted_items += items

    def resume(self, identity: str) -> None:
        """Counts a job found unfinished at start-up as running, without charging its items again."""
        self._usage[identity].running += 1

    def release(self, identity: str) -> None:
        """A job admitted (or resumed) for `identity` ended, or stopped running here."""
        usage = self._usage[identity]
        usage.running = max(0, usage.running - 1)

    def running(self, identity: str) -> int:
        return self._usage[identity].running

    @staticmethod
    def _reject(usage: _Usage, quota: str) -> None:
        usage.rejections[quota] += 1

    def collect(self) -> Iterator[Metric]:
        """Prometheus metrics by identity (a custom collector: the values are read at scrape time)."""
        running = GaugeMetricFamily(
            "storytelling_quota_running_jobs", "Jobs queued or running, by identity.", labels=["identity"]
        )
        available = GaugeMetricFamily(
            "storytelling_quota_items_available",
            "Items an identity may still start now under its hourly quota.",
            labels=["identity"],
        )
        admitted = CounterMetricFamily(
            "storytelling_quota_admitted_items", "Items of admitted jobs, by identity.", labels=["identity"]
        )
        rejected = CounterMetricFamily(
            "storytelling_quota_rejections",
            "Requests refused with RESOURCE_EXHAUSTED, by identity and quota.",
            labels=["identity", "quota"],
        )
        for identity, usage in list(self._usage.items()):
            running.add_metric([identity], usage.running)
            admitted.add_metric([identity], usage.admitted_items)
            if usage.bucket is not None:
                available.add_metric([identity], usage.bucket.peek())
            for quota, count in usage.rejections.items():
                rejected.add_metric([identity, quota], count)
        yield from (running, available, admitted, rejected)
