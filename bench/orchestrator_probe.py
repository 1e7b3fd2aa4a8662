"""One measurement of the orchestrator core with instant stages, printed as one JSON line.

Run by bench_orchestrator.py once per orchestrator version (this checkout and a baseline commit), with
PYTHONPATH pointing at that version's sources: it uses only what both versions have (JobManager,
Store, the Stages protocols), so the same stages drive both.

    python bench/orchestrator_probe.py throughput --items 2000
    python bench/orchestrator_probe.py catch-up --items 10000
"""

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from storytelling.orchestrator.jobs import JobManager
from storytelling.orchestrator.policy import PipelinePolicy, StagePolicy
from storytelling.orchestrator.retry import RetryPolicy
from storytelling.orchestrator.stages import Stages
from storytelling.orchestrator.store import Store
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

# A minimal valid PNG (1x1), so the image artifact is real bytes of a real format.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)
STORY = (
    "On Christmas morning in a crowded kitchen, a young teacher drops a tray of glasses because her "
    "little brother bumped into the table. She looks embarrassed while he hides behind a shelf."
)


class InstantStory:
    async def validate(self, spec):
        pass

    async def write(self, options, index, seed):
        return common_pb2.Story(id=f"story-{index}", text=STORY, provenance={"seed": seed})


class InstantRender:
    """Answers at once, with progress steps; `hold_from` makes items from that index wait forever, to
    keep a job running."""

    def __init__(self, steps: int = 4, hold_from: int | None = None):
        self.steps, self.hold_from = steps, hold_from
        self.held = asyncio.Event()

    async def validate(self, spec):
        pass

    async def render(self, request, progress=None):
        index = int(request.story_id.rsplit("-", 1)[1])
        if self.hold_from is not None and index >= self.hold_from:
            self.held.set()
            await asyncio.Event().wait()
        for step in range(1, self.steps + 1):
            if progress is not None:
                progress(step, self.steps)
        return common_pb2.Image(
            data=PNG, format=common_pb2.IMAGE_FORMAT_PNG, width=1, height=1, seed=request.seed, steps=4
        )


class InstantEvaluate:
    async def validate(self, spec):
        pass

    async def evaluate(self, request):
        ok = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="instant")
        evaluation = evaluation_pb2.ItemEvaluation(item_id=request.item.id)
        evaluation.alignment.status.CopyFrom(ok)
        evaluation.alignment.score = 0.5
        evaluation.complexity.status.CopyFrom(ok)
        evaluation.complexity.score = 0.5
        return evaluation

    async def diversity(self, request):  # the baseline's set evaluation
        return evaluation_pb2.DiversityResult(
            status=common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="instant"),
            diversity=0.5,
            k=5,
        )

    async def summarize(self, request):  # this checkout's: the evaluation service's set summary
        summary = evaluation_pb2.SetSummary(items=len(request.items))
        summary.diversity.CopyFrom(await self.diversity(request))
        return summary


def policy() -> PipelinePolicy:
    stage = StagePolicy(concurrency=8, deadline_s=600)
    return PipelinePolicy(story=stage, render=stage, evaluate=stage, retry=RetryPolicy())


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """Peak resident memory of this process during a run, sampled every 50 ms."""

    def __init__(self) -> None:
        self.peak = current_rss_mb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, current_rss_mb())

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def manager(directory: Path, stages: Stages, items: int) -> tuple[JobManager, Store]:
    store = Store(directory / "orchestrator.sqlite3")
    jobs = JobManager(store, stages, data_dir=directory, policy=policy(), max_items=items, max_running_jobs=1)
    return jobs, store


def db_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as db:
        tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {
            t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables if t != "sqlite_sequence"
        }


def stored_sequence(path: Path, job_id: str) -> int:
    """The job's latest stored sequence, from either version's schema."""
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        column = "sequence" if "sequence" in columns else "last_sequence"
        return db.execute(f"SELECT {column} FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]


def db_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def throughput(items: int, spec_fields: dict) -> dict:
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        directory = Path(tmp)
        jobs, store = manager(directory, Stages(InstantStory(), InstantRender(), InstantEvaluate()), items)
        await jobs.start()
        rss_before = current_rss_mb()
        events = 0
        with RssSampler() as rss:
            start, cpu = time.perf_counter(), time.process_time()
            job = await jobs.create(pipeline_pb2.JobSpec(items=items, seed=1, **spec_fields))
            async for event in jobs.watch(job.id):
                events += 1
                if event.HasField("finished"):
                    assert event.finished.items_succeeded == items, event.finished
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        await jobs.stop()
        store.close()
        path = directory / "orchestrator.sqlite3"
        return {
            "items": items,
            "rows_written": getattr(store, "rows_written", None),  # this checkout's count of row writes
            "seconds": elapsed,
            "cpu_seconds": cpu,
            "items_per_s": items / elapsed,
            "rss_growth_mb": rss.peak - rss_before,
            "db_mb": db_bytes(path) / 2**20,
            "rows": db_counts(path),
            "events_seen_live": events,
        }


async def catch_up(items: int) -> dict:
    """A job of `items` running with all but the last few finished; a new watcher reads it from the
    start: seconds until it has everything the job had when it connected."""
    hold_from = items - 16
    render = InstantRender(hold_from=hold_from)
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        directory = Path(tmp)
        jobs, store = manager(directory, Stages(InstantStory(), render, InstantEvaluate()), items)
        await jobs.start()
        job = await jobs.create(pipeline_pb2.JobSpec(items=items, seed=1))
        succeeded = 0
        events = aiter(jobs.watch(job.id))  # a first watcher follows until the job is held
        while succeeded < hold_from:
            try:
                event = await asyncio.wait_for(anext(events), 10)
            except TimeoutError:
                break  # nothing moves any more: every item that can finish has
            if event.HasField("item") and event.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED:
                succeeded += 1
        await events.aclose()
        await asyncio.sleep(0.5)  # let the last changes commit
        last_sequence = stored_sequence(directory / "orchestrator.sqlite3", job.id)
        start = time.perf_counter()
        received = 0
        async for event in jobs.watch(job.id):
            received += 1
            # Caught up: the snapshot that ends a catch-up (this checkout), or the last change made
            # before this watcher connected (the baseline replays its whole log up to it).
            if event.WhichOneof("event") == "snapshot" or event.sequence >= last_sequence:
                break
        seconds = time.perf_counter() - start
        await jobs.stop()
        store.close()
        return {"items": items, "finished_items": succeeded, "catch_up_seconds": seconds, "events": received}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["throughput", "catch-up"])
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--skip-evaluation", action="store_true")
    args = parser.parse_args()
    if args.what == "throughput":
        fields = {"skip_evaluation": True} if args.skip_evaluation else {}
        result = asyncio.run(throughput(args.items, fields))
    else:
        result = asyncio.run(catch_up(args.items))
    json.dump(result, sys.stdout)
    print()


if __name__ == "__main__":
    main()
