"""Render benchmark: the render service in front of a real tritonserver, against Triton called directly.

Measures, in one run on this machine (the tiny random pipeline at 256x256, so absolute numbers only
reflect plumbing, never a real painter's speed):
  * images/s through render service + Triton at concurrency 1 and 8, and their ratio (the batching gain),
    with the average batch Triton formed (inference_count / execution_count from its statistics);
  * the render-service hop: latency through the service over latency calling Triton directly, at
    concurrency 1 (the service adds a gRPC hop, validation and PNG encoding);
  * peak resident memory (VmHWM) of each Python-backend model instance.
perf_analyzer (PyPI perf-analyzer) has no wheel installable on these machines, so it is not run.

    python bench/bench_render.py [--requests 24] [--steps 4] [--size 256]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import tritonclient.grpc.aio as triton
from storytelling.render.core import RenderCore, RenderRequest
from storytelling.render.painters.triton import TritonPainter, infer_inputs
from storytelling.render.tiny import ensure_tiny_pipeline
from storytelling.runtime.testing import service_process
from storytelling.stack.triton import TritonServer, triton_server
from storytelling.v1 import render_pb2, render_pb2_grpc

PROMPT = "A boy on a tipping stool steals cookies while his mother, lost in thought, lets the sink overflow."


async def run_load(call, requests: int, concurrency: int) -> tuple[float, list[float]]:
    """(images per second, per-request latencies) for `requests` calls, `concurrency` in flight."""
    latencies: list[float] = []
    queue = iter(range(requests))

    async def worker() -> None:
        for i in queue:
            t = time.perf_counter()
            await call(i)
            latencies.append(time.perf_counter() - t)

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return requests / (time.perf_counter() - start), latencies


async def batch_stats(client: triton.InferenceServerClient) -> tuple[int, int]:
    stats = (await client.get_inference_statistics("painter")).model_stats[0]
    return stats.inference_count, stats.execution_count


def instance_memory(server: TritonServer) -> dict[str, float]:
    """Peak RSS (MiB) of every Python-backend stub, i.e. of each model instance, by instance name."""
    out = {}
    for child in Path(f"/proc/{server.process.pid}/task").glob("*/children"):
        for pid in child.read_text().split():
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            status = Path(f"/proc/{pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM"))
            out[cmd[-3].decode() if len(cmd) > 3 else pid] = int(hwm.split()[1]) / 1024
    return out


async def bench(server: TritonServer, args: argparse.Namespace) -> None:
    env = {
        "STORYTELLING_RENDER_TRITON_URL": server.grpc_url,
        "STORYTELLING_RENDER_DEFAULT_PAINTER": "triton",
        "STORYTELLING_RENDER_LOG_LEVEL": "WARNING",
        "STORYTELLING_RENDER_TRITON_STREAM_MODEL": "",
    }
    client = triton.InferenceServerClient(server.grpc_url)
    painter = TritonPainter(server.grpc_url)
    await painter.ready()  # reads the model's defaults
    request = RenderRequest(prompt=PROMPT, width=args.size, height=args.size, steps=args.steps, seed=0)
    _, job = RenderCore({"triton": painter}, "triton").plan(request)

    async def direct(i: int) -> None:
        await client.infer("painter", infer_inputs(job))

    with service_process("storytelling.render", env=env) as proc:
        channel = grpc.aio.insecure_channel(
            proc.address, options=[("grpc.max_receive_message_length", 2**26)]
        )
        stub = render_pb2_grpc.RenderServiceStub(channel)
        message = render_pb2.RenderRequest(prompt=PROMPT, width=args.size, height=args.size, steps=args.steps)

        async def via_service(i: int) -> None:
            message.seed = i
            await stub.Render(message)

        for call in (direct, via_service):  # warm up both paths
            await run_load(call, 4, 1)
        hop_latency: dict[str, list[float]] = {"direct": [], "service": []}
        for _ in range(args.requests):  # alternate single requests: both paths see the same machine state
            for name, call in (("direct", direct), ("service", via_service)):
                hop_latency[name] += (await run_load(call, 1, 1))[1]
        results: dict[str, tuple[float, list[float]]] = {}
        batches: dict[str, float] = {}
        for name, call in (("direct", direct), ("service", via_service)):
            for concurrency in (1, 8):
                before = await batch_stats(client)
                results[f"{name}@{concurrency}"] = await run_load(call, args.requests, concurrency)
                after = await batch_stats(client)
                batches[f"{name}@{concurrency}"] = (after[0] - before[0]) / max(1, after[1] - before[1])
        await channel.close()
    await painter.close()
    await client.close()

    print(
        f"render benchmark: tiny random pipeline (plumbing only), {args.size}x{args.size}, "
        f"{args.steps} steps, {args.requests} requests per point, CPU"
    )
    print(f"{'path':<12}{'conc':>5}{'images/s':>10}{'p50 ms':>9}{'avg batch':>11}")
    for key, (ips, lat) in results.items():
        name, conc = key.split("@")
        print(f"{name:<12}{conc:>5}{ips:>10.2f}{statistics.median(lat) * 1000:>9.1f}{batches[key]:>11.2f}")
    s1, s8 = results["service@1"][0], results["service@8"][0]
    hop = statistics.median(hop_latency["service"]) / statistics.median(hop_latency["direct"])
    print(f"batching gain through the service (images/s at 8 / at 1): {s8 / s1:.2f}x")
    print(
        f"render-service hop at {args.size}x{args.size}, alternating single requests "
        f"(service p50 / direct p50): {hop:.3f} ({(hop - 1) * 100:+.1f}%)"
    )
    for instance, mib in instance_memory(server).items():
        print(f"peak memory of model instance {instance}: {mib:.0f} MiB (VmHWM)")
    print("perf_analyzer: not run (PyPI perf-analyzer has no wheel installable here)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=24)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    model = ensure_tiny_pipeline()
    params = {
        "model": str(model),
        "steps": str(args.steps),
        "width": str(args.size),
        "height": str(args.size),
        "guidance_scale": "5.0",
    }
    with (
        tempfile.TemporaryDirectory(prefix="bench-render-") as tmp,
        triton_server(["painter"], {"painter": params}, workdir=Path(tmp)) as server,
    ):
        asyncio.run(bench(server, args))


if __name__ == "__main__":
    sys.exit(main())
