"""Shared runtime cost: a trivial unary RPC through the runtime against a bare grpc.aio server.

Both servers run the same servicer (tests/runtime/probe.py) in their own process on loopback; the only
difference is the runtime (interceptor with metrics, logging, deadlines, error mapping; health;
reflection). Rounds alternate between the two so machine noise hits both alike.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time

import grpc

from storytelling.runtime.process import free_port, start_service_process
from storytelling.v1 import story_pb2, story_pb2_grpc

REQUEST = story_pb2.ListModesRequest()


async def serve_bare(port: int) -> None:
    from tests.runtime.probe import ProbeServicer

    server = grpc.aio.server()
    story_pb2_grpc.add_StoryServiceServicer_to_server(ProbeServicer(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


async def latencies(address: str, calls: int) -> list[float]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        for _ in range(200):  # warm-up: connection, handler cache, allocator
            await stub.ListModes(REQUEST)
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            await stub.ListModes(REQUEST)
            samples.append(time.perf_counter() - start)
        return samples


async def throughput(address: str, callers: int, seconds: float) -> float:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        await stub.ListModes(REQUEST)
        done = 0
        stop_at = time.perf_counter() + seconds

        async def caller() -> None:
            nonlocal done
            while time.perf_counter() < stop_at:
                await stub.ListModes(REQUEST)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(caller() for _ in range(callers)))
        return done / (time.perf_counter() - start)


async def wrapper_cost_us(calls: int = 100_000) -> tuple[float, float]:
    """In-process cost of one call through the runtime's handler wrapper, without a network."""
    from prometheus_client import CollectorRegistry

    from storytelling.runtime.handlers import HandlerWrapper
    from storytelling.runtime.metrics import RpcMetrics

    class Context:  # the two calls the wrapper makes on a servicer context
        def time_remaining(self) -> None:
            return None

        def code(self) -> None:
            return None

    async def servicer(request, context):
        return request

    handler = grpc.unary_unary_rpc_method_handler(servicer)
    wrapped = HandlerWrapper(RpcMetrics(CollectorRegistry())).wrap("/bench.Probe/Call", handler).unary_unary
    context = Context()
    timings = []
    for fn in (servicer, wrapped, servicer, wrapped):
        start = time.perf_counter()
        for _ in range(calls):
            await fn(REQUEST, context)
        timings.append((time.perf_counter() - start) / calls * 1e6)
    return min(timings[0::2]), min(timings[1::2])


def wait_port(address: str) -> None:
    with grpc.insecure_channel(address) as channel:
        grpc.channel_ready_future(channel).result(timeout=30)


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--callers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    if args.serve_bare:
        asyncio.run(serve_bare(args.serve_bare))
        return

    runtime = start_service_process("tests.runtime.probe", args=["--log-level", "WARNING"])
    bare_port = free_port()
    bare = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(bare_port)])
    try:
        runtime.wait_serving(60)
        wait_port(f"127.0.0.1:{bare_port}")
        targets = {"bare grpc.aio": f"127.0.0.1:{bare_port}", "runtime": runtime.address}
        lat: dict[str, list[float]] = {name: [] for name in targets}
        rps: dict[str, list[float]] = {name: [] for name in targets}
        for _ in range(args.rounds):
            for name, address in targets.items():
                lat[name] += asyncio.run(latencies(address, args.calls))
                rps[name].append(asyncio.run(throughput(address, args.callers, args.seconds)))
    finally:
        runtime.stop()
        bare.terminate()
        bare.wait()

    print(f"# trivial unary RPC on loopback, {args.rounds} alternating rounds, 2-core machine")
    print(f"{'server':<16}{'p50 ms':>10}{'p99 ms':>10}{f'rps@{args.callers}':>12}")
    for name in targets:
        print(
            f"{name:<16}{percentile(lat[name], 0.5) * 1e3:>10.3f}{percentile(lat[name], 0.99) * 1e3:>10.3f}"
            f"{statistics.median(rps[name]):>12.0f}"
        )
    base, ours = "bare grpc.aio", "runtime"
    p50_ratio = percentile(lat[ours], 0.5) / percentile(lat[base], 0.5)
    rps_ratio = statistics.median(rps[ours]) / statistics.median(rps[base])
    print(f"runtime/bare p50 latency ratio: {p50_ratio:.3f} (overhead {100 * (p50_ratio - 1):+.1f}%)")
    print(f"runtime/bare throughput ratio:  {rps_ratio:.3f} (overhead {100 * (1 / rps_ratio - 1):+.1f}%)")
    bare_us, wrapped_us = asyncio.run(wrapper_cost_us())
    per_rpc_us = 1e6 / statistics.median(rps[base])
    print(
        f"handler wrapper in-process: {wrapped_us - bare_us:.2f} us per RPC "
        f"= {100 * (wrapped_us - bare_us) / per_rpc_us:.1f}% of a bare RPC's {per_rpc_us:.0f} us"
    )


if __name__ == "__main__":
    main()
