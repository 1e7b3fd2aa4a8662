"""Targets, endpoint selection from EndpointSlices, and the watch that keeps endpoints fresh.

The Kubernetes watch runs the real `kubernetes` client against `FakeApiServer` (recorded objects over
real HTTP): no API server can run on our machines.
"""

from __future__ import annotations

import asyncio
import urllib.parse

import pytest
from storytelling.runtime.endpoints import Endpoint, EndpointWatch, Target
from storytelling.runtime.kube import endpoints_of

from tests.cluster.apiserver import endpoint_slice, fake_api_server


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.1:8001", Target("static", "10.0.0.1", 8001)),
        ("triton:8001", Target("static", "triton", 8001)),
        ("[::1]:50051", Target("static", "::1", 50051)),
        ("dns:///triton-headless.ml.svc:8001", Target("dns", "triton-headless.ml.svc", 8001)),
        ("kubernetes:///triton.ml:grpc", Target("kubernetes", "triton.ml", "grpc")),
        ("k8s:///story:50051", Target("kubernetes", "story", 50051)),
    ],
)
def test_targets_parse(text, expected):
    assert Target.parse(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("triton", "expected host:port"),
        ("triton:", "missing port"),
        ("triton:70000", "out of range"),
        ("triton:grpc", "named ports need kubernetes"),
        ("http://triton:8001", "unknown scheme"),
        ("dns:///a/b:1", "without a path"),
    ],
)
def test_bad_targets_are_refused_with_the_reason(text, message):
    with pytest.raises(ValueError, match=message) as error:
        Target.parse(text)
    assert repr(text) in str(error.value)


def test_only_ready_endpoints_on_the_matching_port_are_selected():
    slices = [
        endpoint_slice("triton", "triton-a", ["10.0.0.1", "10.0.0.2"], 8001),
        endpoint_slice("triton", "triton-b", ["10.0.0.3"], 8001, ready=False),  # loading or terminating
        {  # readiness unknown counts as ready, as the API documents
            "addressType": "IPv4",
            "ports": [{"name": "grpc", "port": 8001}],
            "endpoints": [{"addresses": ["10.0.0.4"]}],
        },
        {
            "addressType": "FQDN",
            "ports": [{"name": "grpc", "port": 8001}],
            "endpoints": [{"addresses": ["x.y"]}],
        },
        {
            "addressType": "IPv4",
            "ports": [{"name": "metrics", "port": 8002}],
            "endpoints": [{"addresses": ["10.0.0.5"]}],
        },  # fmt: skip
    ]
    assert endpoints_of(slices, 8001) == tuple(Endpoint(f"10.0.0.{n}", 8001) for n in (1, 2, 4))
    assert endpoints_of(slices, "grpc") == endpoints_of(slices, 8001)
    assert endpoints_of(slices, "metrics") == (Endpoint("10.0.0.5", 8002),)
    assert endpoints_of(slices, 9999) == ()


def test_endpoints_print_as_grpc_addresses():
    assert str(Endpoint("10.0.0.1", 80)) == "10.0.0.1:80"
    assert str(Endpoint("fd00::1", 80)) == "[fd00::1]:80"


async def test_dns_targets_resolve_every_address():
    watch = EndpointWatch(Target.parse("dns:///localhost:4321"), dns_interval_s=0.1)
    await watch.start()
    try:
        endpoints = await watch.wait_resolved(5)
    finally:
        await watch.close()
    assert Endpoint("127.0.0.1", 4321) in endpoints
    assert watch.source == "dns"


async def test_a_kubernetes_target_outside_a_cluster_falls_back_to_dns():
    watch = EndpointWatch(Target.parse("kubernetes:///localhost:4321"))
    await watch.start()
    try:
        assert Endpoint("127.0.0.1", 4321) in await watch.wait_resolved(5)
    finally:
        await watch.close()
    assert watch.source == "dns"


async def _changes(watch: EndpointWatch, expected: tuple[Endpoint, ...], timeout_s: float = 10) -> None:
    async with asyncio.timeout(timeout_s):
        while watch.endpoints != expected:
            await asyncio.sleep(0.02)


async def test_the_endpointslice_watch_follows_replicas_as_they_come_and_go():
    with fake_api_server() as api:
        api.put("default", "endpointslices", endpoint_slice("triton", "triton-a", ["10.0.0.1"], 8001))
        api.put("default", "endpointslices", endpoint_slice("other", "other-a", ["10.9.9.9"], 8001))
        watch = EndpointWatch(Target.parse("kubernetes:///triton:grpc"), kubernetes_client=api.client())
        seen: list[tuple[Endpoint, ...]] = []
        watch.subscribe(seen.append)
        await watch.start()
        try:
            assert await watch.wait_resolved(10) == (Endpoint("10.0.0.1", 8001),)
            assert watch.source == "kubernetes"

            # A new replica becomes ready: a second slice appears.
            api.put("default", "endpointslices", endpoint_slice("triton", "triton-b", ["10.0.0.2"], 8001))
            await _changes(watch, (Endpoint("10.0.0.1", 8001), Endpoint("10.0.0.2", 8001)))

            # The first one starts terminating: it is no longer ready.
            api.put(
                "default",
                "endpointslices",
                endpoint_slice("triton", "triton-a", ["10.0.0.1"], 8001, ready=False),
            )
            await _changes(watch, (Endpoint("10.0.0.2", 8001),))

            # The watch window expires and history was compacted: the watch lists again and catches up.
            lists = sum("watch=" not in r for r in api.requests)
            api.expire_next_watch = True
            api.end_watches()
            api.delete("default", "endpointslices", "triton-b")
            api.put("default", "endpointslices", endpoint_slice("triton", "triton-c", ["10.0.0.3"], 8001))
            await _changes(watch, (Endpoint("10.0.0.3", 8001),))
            assert sum("watch=" not in r for r in api.requests) == lists + 1
        finally:
            await watch.close()
        assert all(Endpoint("10.9.9.9", 8001) not in endpoints for endpoints in seen)
        assert all(a != b for a, b in zip(seen, seen[1:], strict=False)), "no repeated publications"
        selectors = {
            urllib.parse.parse_qs(urllib.parse.urlsplit(r).query)["labelSelector"][0] for r in api.requests
        }
        assert selectors == {"kubernetes.io/service-name=triton"}


async def test_the_watch_recovers_after_the_api_server_was_unreachable():
    with fake_api_server() as api:
        api.put("default", "endpointslices", endpoint_slice("story", "story-a", ["10.0.1.1"], 50051))
        port = int(api.url.rpartition(":")[2])
        watch = EndpointWatch(Target.parse("kubernetes:///story:50051"), kubernetes_client=api.client())
        await watch.start()
        assert await watch.wait_resolved(10) == (Endpoint("10.0.1.1", 50051),)
    try:
        await asyncio.sleep(1.0)  # the watch fails and backs off; the last known endpoints stay
        assert watch.endpoints == (Endpoint("10.0.1.1", 50051),)
        with fake_api_server(
            port, version=200
        ) as restarted:  # story-a went away meanwhile; that history is compacted
            restarted.put(
                "default", "endpointslices", endpoint_slice("story", "story-b", ["10.0.1.2"], 50051)
            )
            restarted.forget_history()
            await _changes(watch, (Endpoint("10.0.1.2", 50051),), timeout_s=20)
    finally:
        await watch.close()
