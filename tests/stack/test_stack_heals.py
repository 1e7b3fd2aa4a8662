"""The local stack heals: kill -9 each service of a running stack in the middle of a job; the supervisor
starts it again on its ports, and the job completes with every item exactly once.

The real stack (embedded default: SmolLM2 stories, sketch painter, embedder and spaCy evaluation) under
its supervisor; the job is followed with the SDK, whose watch reconnects when the orchestrator dies.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from storytelling.api.stackstatus import ChildStatus
from storytelling.client import Client, job_spec
from storytelling.stack.local import LocalStack, StackOptions
from storytelling.stack.supervisor import RestartPolicy
from storytelling.v1 import pipeline_pb2

pytestmark = pytest.mark.slow

ITEMS = 6
KILLED = ["story", "render", "evaluation", "orchestrator"]
QUICK = RestartPolicy(initial_backoff_s=0.2, max_backoff_s=2.0)


def done_artifacts(job_dir: Path) -> dict[Path, int]:
    """Every finished stage's artifact and its modification time (ns)."""
    files = [*job_dir.glob("items/*/story.json"), *job_dir.glob("items/*/image.json")]
    files += job_dir.glob("items/*/evaluation.json")
    return {path: path.stat().st_mtime_ns for path in files}


@pytest.mark.timeout(1800)
def test_killing_each_service_mid_job_costs_restarts_not_items(tmp_path: Path):
    statuses: list[list[ChildStatus]] = []
    stop = threading.Event()
    with LocalStack(StackOptions(data_dir=tmp_path / "data", ephemeral_ports=True)) as stack:
        endpoints = stack.up()
        supervisor = stack.supervise(QUICK, statuses.append)
        supervising = threading.Thread(target=supervisor.run, args=(stop, 0.2), daemon=True)
        supervising.start()
        try:
            with Client(endpoints["orchestrator"], timeout=60) as client:
                spec = job_spec(ITEMS, max_tokens=96, max_attempts=1, seed=11)
                job = client.create_job(spec)
                events: list[pipeline_pb2.JobEvent] = []
                seen: dict[Path, int] = {}
                kills = iter(KILLED)
                victim = next(kills)
                for event in client.watch(job.id, results=False, reconnects=60):
                    events.append(event)
                    seen.update(
                        {p: t for p, t in done_artifacts(Path(job.directory)).items() if p not in seen}
                    )
                    if victim is None or not _in_flight(event, victim):
                        continue
                    stack.services[victim].process.kill()  # SIGKILL, mid-job
                    _wait_restarted(supervisor, victim)
                    victim = next(kills, None)
                final = client.get_job(job.id)
        finally:
            stop.set()
            supervising.join(10)
            supervisor.close()

    assert victim is None, "the job ended before every service was killed"
    assert final.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (final.items_succeeded, final.items_failed) == (ITEMS, 0), [i.error for i in final.items]
    completions = Counter(
        e.item.index
        for e in events
        if e.HasField("item") and e.item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED
    )
    assert completions == Counter(range(ITEMS)), "every item completes exactly once"
    assert {p: t for p, t in done_artifacts(Path(final.directory)).items() if p in seen} == seen, (
        "a finished stage's artifact was written again"
    )
    last = {s.name: s for s in statuses[-1]}
    for name in KILLED:
        assert (last[name].state, last[name].restarts) == ("running", 1), last[name]
        assert last[name].last_exit == "killed by SIGKILL"


def _in_flight(event: pipeline_pb2.JobEvent, service: str) -> bool:
    """Whether the event shows work for `service` under way (the orchestrator: any change)."""
    if service == "orchestrator":
        return event.HasField("item") and event.counts.items_succeeded >= 2
    stage = {"story": pipeline_pb2.STAGE_STORY, "render": pipeline_pb2.STAGE_RENDER}.get(
        service, pipeline_pb2.STAGE_EVALUATE
    )
    return any(c.stage == stage and c.running for c in event.counts.stages)


def _wait_restarted(supervisor, name: str, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while True:
        status = next(s for s in supervisor.statuses() if s.name == name)
        if status.restarts >= 1 and status.state == "running":
            return
        assert status.state != "crash-loop", status
        assert time.monotonic() < deadline, f"{name} was not restarted: {status}"
        time.sleep(0.2)
