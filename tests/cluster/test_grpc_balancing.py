"""The orchestrator's hop to the services: one balanced gRPC channel over every ready replica.

The replicas are real gRPC servers (health service only) on 127.0.0.2, .3 and .4 with one shared port, as
pods of one headless Service; their endpoints come from EndpointSlices served by `FakeApiServer` to the
real `kubernetes` client (no API server can run here).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio
from storytelling.orchestrator.clients import Connection
from storytelling.runtime.balancing import balanced_channel, grpc_target
from storytelling.runtime.endpoints import Endpoint, EndpointWatch, Target
from storytelling.runtime.process import free_port

from tests.cluster.apiserver import FakeApiServer, endpoint_slice, fake_api_server

HOSTS = ("127.0.0.2", "127.0.0.3", "127.0.0.4")


class CountingHealth(health_aio.HealthServicer):
    def __init__(self, host: str, calls: Counter) -> None:
        super().__init__()
        self.host, self.calls = host, calls

    async def Check(self, request, context):
        self.calls[self.host] += 1
        return await super().Check(request, context)


async def serve(host: str, port: int, calls: Counter) -> grpc.aio.Server:
    server = grpc.aio.server()
    health_pb2_grpc.add_HealthServicer_to_server(CountingHealth(host, calls), server)
    assert server.add_insecure_port(f"{host}:{port}") == port
    await server.start()
    return server


def publish(api: FakeApiServer, ready: dict[str, bool], port: int) -> None:
    for host, is_ready in ready.items():
        api.put("default", "endpointslices",
                endpoint_slice("story", f"story-{host}", [host], port, ready=is_ready))  # fmt: skip


async def until(condition, timeout_s: float = 10.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.02)


async def checks(channel_of, count: int) -> None:
    for _ in range(count):
        await health_pb2_grpc.HealthStub(channel_of()).Check(health_pb2.HealthCheckRequest(), timeout=5)


def test_the_target_lists_one_address_family():
    v4 = (Endpoint("10.0.0.1", 1), Endpoint("10.0.0.2", 1))
    assert grpc_target(v4, "dns:///x:1") == "ipv4:10.0.0.1:1,10.0.0.2:1"
    assert grpc_target((Endpoint("fd00::1", 1),), "dns:///x:1") == "ipv6:[fd00::1]:1"
    assert grpc_target((), "dns:///x:1") == "dns:///x:1"


async def test_calls_rotate_over_replicas_that_come_and_go():
    port, calls = free_port(), Counter()
    servers = {host: await serve(host, port, calls) for host in HOSTS[:2]}
    try:
        with fake_api_server() as api:
            publish(api, {HOSTS[0]: True, HOSTS[1]: True}, port)
            target = Target.parse(f"kubernetes:///story:{port}")
            balanced = balanced_channel(target, watch=EndpointWatch(target, kubernetes_client=api.client()))
            try:
                balanced.current()
                await until(lambda: balanced.address.count(",") == 1)
                await checks(balanced.current, 10)
                assert calls == Counter({HOSTS[0]: 5, HOSTS[1]: 5})

                # A long call on the current channel survives the endpoint change that retires it.
                watch_call = health_pb2_grpc.HealthStub(balanced.current()).Watch(
                    health_pb2.HealthCheckRequest()
                )
                assert (await watch_call.read()).status == health_pb2.HealthCheckResponse.SERVING

                # Replica 2 goes away (Kubernetes marks it not ready first); replica 3 is added.
                servers[HOSTS[2]] = await serve(HOSTS[2], port, calls)
                publish(api, {HOSTS[0]: True, HOSTS[1]: False, HOSTS[2]: True}, port)
                await until(lambda: HOSTS[2] in balanced.address and HOSTS[1] not in balanced.address)
                calls.clear()
                await checks(balanced.current, 10)
                assert calls == Counter({HOSTS[0]: 5, HOSTS[2]: 5})
                assert watch_call.done() is False, "the retired channel still serves its running call"
                watch_call.cancel()
            finally:
                await balanced.aclose()
    finally:
        for server in servers.values():
            await server.stop(0)


async def test_a_replica_that_dies_is_skipped_before_kubernetes_notices():
    port, calls = free_port(), Counter()
    servers = {host: await serve(host, port, calls) for host in HOSTS[:2]}
    try:
        with fake_api_server() as api:
            publish(api, {HOSTS[0]: True, HOSTS[1]: True}, port)
            target = Target.parse(f"kubernetes:///story:{port}")
            balanced = balanced_channel(target, watch=EndpointWatch(target, kubernetes_client=api.client()))
            try:
                balanced.current()
                await until(lambda: balanced.address.count(",") == 1)
                await checks(balanced.current, 2)
                await servers.pop(HOSTS[1]).stop(0)  # killed: its slice still says ready
                calls.clear()
                await checks(balanced.current, 6)
                assert calls == Counter({HOSTS[0]: 6})
            finally:
                await balanced.aclose()
    finally:
        for server in servers.values():
            await server.stop(0)


async def test_the_orchestrator_connection_takes_a_plain_address_as_before():
    port, calls = free_port(), Counter()
    server = await serve("127.0.0.1", port, calls)
    connection = Connection(f"127.0.0.1:{port}")
    try:
        await checks(lambda: connection.channel, 3)
        assert calls == Counter({"127.0.0.1": 3})
    finally:
        await connection.close()
        with contextlib.suppress(Exception):
            await server.stop(0)


def test_bad_addresses_are_refused_at_start_up():
    with pytest.raises(ValueError, match="expected host:port"):
        Connection("story")
