"""Quotas per identity, transport-free: admission, token bucket refill, retry delays, metrics."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from storytelling.orchestrator.quotas import QuotaLimits, Quotas, TokenBucket
from storytelling.runtime.errors import ResourceExhausted


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_bucket_refills_one_hours_worth_per_hour_and_caps_at_it():
    clock = Clock()
    bucket = TokenBucket(360, clock)  # 0.1 item per second
    bucket.take(360)
    assert bucket.available() == 0 and bucket.wait_for(36) == pytest.approx(360)
    clock.now += 60
    assert bucket.available() == pytest.approx(6) and bucket.peek() == pytest.approx(6)
    clock.now += 100 * 3600
    assert bucket.available() == 360


def test_items_per_job_is_refused_naming_the_field_without_a_retry_delay():
    quotas = Quotas(QuotaLimits(items_per_job=10))
    with pytest.raises(ResourceExhausted) as error:
        quotas.admit("alice", 11)
    assert error.value.field == "spec.items" and error.value.retry_after_s is None
    assert "11 items exceed the quota of 10 items per job for identity 'alice'" in error.value.message
    quotas.admit("alice", 10)


def test_running_jobs_per_identity_with_a_retry_hint_and_release():
    quotas = Quotas(QuotaLimits(running_jobs=2), running_retry_s=15)
    quotas.admit("alice", 1)
    quotas.admit("alice", 1)
    quotas.admit("bob", 1)  # another identity has its own count
    with pytest.raises(ResourceExhausted) as error:
        quotas.admit("alice", 1)
    assert error.value.retry_after_s == 15 and "2 jobs queued or running" in error.value.message
    quotas.release("alice")
    quotas.admit("alice", 1)
    quotas.resume("carol")  # a job resumed at start-up counts without being charged
    assert quotas.running("carol") == 1


def test_items_per_hour_says_when_a_retry_can_succeed():
    clock = Clock()
    quotas = Quotas(QuotaLimits(items_per_hour=100), clock=clock)
    quotas.admit("alice", 80)
    quotas.release("alice")
    with pytest.raises(ResourceExhausted) as error:
        quotas.admit("alice", 30)  # 20 left; 10 more come in 360 s
    assert error.value.retry_after_s == pytest.approx(360)
    assert "retry in 360 s" in error.value.message
    clock.now += error.value.retry_after_s
    quotas.admit("alice", 30)
    with pytest.raises(ResourceExhausted) as never:
        quotas.admit("alice", 101)  # more than the bucket holds: waiting cannot help
    assert never.value.retry_after_s is None and never.value.field == "spec.items"


def test_overrides_per_identity():
    quotas = Quotas(QuotaLimits(items_per_job=5), {"batch": QuotaLimits(items_per_job=500)})
    quotas.admit("batch", 500)
    with pytest.raises(ResourceExhausted):
        quotas.admit("alice", 6)


def test_counters_are_prometheus_metrics_by_identity():
    clock = Clock()
    quotas = Quotas(QuotaLimits(running_jobs=1, items_per_hour=10), clock=clock)
    registry = CollectorRegistry()
    registry.register(quotas)
    quotas.admit("alice", 4)
    with pytest.raises(ResourceExhausted):
        quotas.admit("alice", 1)
    value = registry.get_sample_value
    assert value("storytelling_quota_running_jobs", {"identity": "alice"}) == 1
    assert value("storytelling_quota_items_available", {"identity": "alice"}) == pytest.approx(6)
    assert value("storytelling_quota_admitted_items_total", {"identity": "alice"}) == 4
    assert value("storytelling_quota_rejections_total", {"identity": "alice", "quota": "running_jobs"}) == 1


# --- through the orchestrator's API, under load ------------------------------------------------------


async def test_quotas_hold_under_fifty_concurrent_clients(tmp_path, embedder):
    """50 clients, each on its own connection, create one-item jobs at once: exactly the quota gets
    through; the rest get RESOURCE_EXHAUSTED with the retry delay in the status details."""
    import asyncio

    from storytelling.client import AsyncClient, ChannelOptions, ResourceExhaustedError, job_spec
    from tests.security.services import secured_services

    async with secured_services(
        tmp_path,
        embedder,
        story_delay_s=60,  # jobs stay running through the test
        quota_running_jobs=4,
        quota_running_retry_s=7,
        quota_overrides={"carol": {"items_per_hour": 10}},
    ) as secured:
        address = secured.addresses["orchestrator"]

        async def create(identity: str, seed: int):
            options = ChannelOptions.tls(secured.ca.cert, token=secured.tokens[identity].value)
            async with AsyncClient(address, options=options) as client:
                try:
                    return await client.create_job(job_spec(1, seed=seed))
                except ResourceExhaustedError as error:
                    return error

        def split(results):
            refused = [r for r in results if isinstance(r, ResourceExhaustedError)]
            return [r for r in results if not isinstance(r, Exception)], refused

        admitted, refused = split(await asyncio.gather(*(create("alice", i) for i in range(50))))
        assert (len(admitted), len(refused)) == (4, 46)
        assert all(e.retry_after_s == 7 and "4 jobs queued or running" in e.details for e in refused)
        assert not isinstance(await create("bob", 99), Exception)  # quotas are per identity

        hourly_admitted, hourly_refused = split(
            await asyncio.gather(*(create("carol", i) for i in range(50)))
        )
        assert (len(hourly_admitted), len(hourly_refused)) == (10, 40)
        assert all(0 < e.retry_after_s <= 360 and "items per hour" in e.details for e in hourly_refused)

        registry = secured.channels["orchestrator"].server.registry
        value = registry.get_sample_value
        assert value("storytelling_quota_running_jobs", {"identity": "alice"}) == 4
        assert (
            value("storytelling_quota_rejections_total", {"identity": "alice", "quota": "running_jobs"}) == 46
        )
        assert (
            value("storytelling_quota_rejections_total", {"identity": "carol", "quota": "items_per_hour"})
            == 40
        )
        assert value("storytelling_quota_admitted_items_total", {"identity": "carol"}) == 10
        assert value("storytelling_quota_items_available", {"identity": "carol"}) < 1

        # A job that ends frees its slot.
        options = ChannelOptions.tls(secured.ca.cert, token=secured.tokens["alice"].value)
        async with AsyncClient(address, options=options) as client:
            await client.cancel_job(admitted[0].id)
        assert not isinstance(await create("alice", 100), Exception)
