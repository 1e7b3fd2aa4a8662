"""Story benchmark: the story service (a real process) in front of a real vLLM CPU server (SmolLM2-135M).

Measures, in one run on this machine:
  * stories/s for N WriteStory calls at concurrency 1 and 8, and their ratio: continuous batching in vLLM
    lets 8 requests share each decoding step, so the ratio should be well above 1;
  * time to first story of a WriteStories stream of N (the service generates 8 at a time);
  * resident memory of the story service process (VmRSS now, VmHWM peak) and whether it mapped torch:
    with a remote engine it must not load weights.
Every story is CoR-guided with three exemplars (a prompt of about 1000 tokens). SmolLM2-135M is a weak
writer, so outputs are regenerated when rejected: stories/s includes those regenerations, which the run
reports, and tokens/s is printed beside it.

    python bench/bench_story.py [--stories 32] [--max-tokens 128] [--max-attempts 1]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import grpc
from storytelling.llm.smollm2 import materialize
from storytelling.runtime.testing import service_process
from storytelling.stack.vllm import start_vllm
from storytelling.v1 import common_pb2, story_pb2, story_pb2_grpc

SERVED = "smollm2-135m"


def options(max_tokens: int, max_attempts: int) -> story_pb2.StoryRequestOptions:
    return story_pb2.StoryRequestOptions(
        mode=common_pb2.STORY_MODE_COR_GUIDED,
        sampling=common_pb2.SamplingParams(max_tokens=max_tokens),
        max_attempts=max_attempts,
    )


async def write_many(
    address: str, count: int, concurrency: int, opts
) -> tuple[float, list[common_pb2.Story]]:
    """(seconds, stories) for `count` WriteStory calls with `concurrency` in flight."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        gate = asyncio.Semaphore(concurrency)

        async def one(i: int) -> common_pb2.Story:
            async with gate:
                request = story_pb2.WriteStoryRequest(options=opts, seed=1000 + i)
                return (await stub.WriteStory(request, timeout=900)).story

        started = time.perf_counter()
        stories = await asyncio.gather(*(one(i) for i in range(count)))
        return time.perf_counter() - started, stories


async def stream(address: str, count: int, opts) -> dict[str, object]:
    """Time to first story and total time of one WriteStories stream (or where it failed: the stream
    ends at the first story that exhausts its attempts)."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        request = story_pb2.WriteStoriesRequest(options=opts, count=count, seed=7)
        started = time.perf_counter()
        first, received, error = None, 0, ""
        try:
            async for _ in stub.WriteStories(request, timeout=900):
                received += 1
                first = first or time.perf_counter() - started
        except grpc.aio.AioRpcError as failure:
            error = f"{failure.code().name}: {failure.details()}"
        return {
            "stream_time_to_first_story_s": round(first, 2) if first else None,
            "stream_total_s": round(time.perf_counter() - started, 2),
            "stream_stories": received,
            "stream_error": error,
        }


def memory(pid: int) -> dict[str, object]:
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    maps = Path(f"/proc/{pid}/maps").read_text()
    return {
        "rss_mib": int(status["VmRSS"].split()[0]) / 1024,
        "peak_rss_mib": int(status["VmHWM"].split()[0]) / 1024,
        "torch_mapped": "libtorch" in maps,
    }


def summary(label: str, seconds: float, stories: list[common_pb2.Story]) -> dict[str, object]:
    tokens = sum(s.provenance.completion_tokens for s in stories)
    regenerated = sum(len(s.provenance.rejected) for s in stories)
    salvaged = sum(
        any(r.detail.startswith("returned anyway") for r in s.provenance.rejected) for s in stories
    )
    row = {
        "run": label,
        "stories": len(stories),
        "seconds": round(seconds, 2),
        "stories_per_s": round(len(stories) / seconds, 3),
        "accepted_tokens_per_s": round(tokens / seconds, 1),
        "rejected_outputs": regenerated,
        "salvaged_stories": salvaged,
    }
    print(json.dumps(row), flush=True)
    return row


async def main(args: argparse.Namespace) -> None:
    opts = options(args.max_tokens, args.max_attempts)
    with start_vllm(materialize(), SERVED) as llm:
        engines = json.dumps(
            {"vllm": {"kind": "openai", "base_url": llm.base_url, "model": SERVED, "max_concurrency": 8}}
        )
        service_args = ["--engines", engines, "--default-engine", "vllm", "--concurrency", "8"]
        with service_process("storytelling.story", args=service_args) as proc:
            pid = proc.process.pid
            idle = memory(pid)
            await write_many(proc.address, 2, 2, opts)  # warm-up: first requests pay vLLM's lazy init
            sequential = summary("concurrency=1", *await write_many(proc.address, args.stories, 1, opts))
            batched = summary("concurrency=8", *await write_many(proc.address, args.stories, 8, opts))
            streamed = await stream(proc.address, args.stories, opts)
            loaded = memory(pid)
    print(
        json.dumps(
            {
                "speedup_c8_over_c1": round(batched["stories_per_s"] / sequential["stories_per_s"], 2),
                "tokens_speedup_c8_over_c1": round(
                    batched["accepted_tokens_per_s"] / sequential["accepted_tokens_per_s"], 2
                ),
                **streamed,
                "service_memory_idle": idle,
                "service_memory_after": loaded,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stories", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--max-attempts", type=int, default=1, help="regenerations after a rejected output")
    asyncio.run(main(parser.parse_args()))
