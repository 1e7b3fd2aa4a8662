"""JobManager end to end over SQLite, artifacts on disk and in-process stages (no network)."""

import asyncio
import base64
import os
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from storytelling.api.layout import JobFiles
from storytelling.api.vocabulary import STAGE_SERVICES
from storytelling.orchestrator import jobs as jobs_module
from storytelling.orchestrator import runner
from storytelling.orchestrator.gate import ServiceGate, WaitPolicy
from storytelling.orchestrator.journal import Journal
from storytelling.orchestrator.quotas import QuotaLimits, Quotas
from storytelling.orchestrator.stages import Stages
from storytelling.runtime.auth import Principal, Scope
from storytelling.runtime.errors import (
    AlreadyExists,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

from .conftest import ended_events, finished, local_stages, policy, spec, until_held
from .stages import LocalEvaluate, LocalRender, LocalStory

SUCCEEDED, FAILED = pipeline_pb2.ITEM_STATE_SUCCEEDED, pipeline_pb2.ITEM_STATE_FAILED


async def events_of(manager, job_id: str, after: int = 0) -> list[pipeline_pb2.JobEvent]:
    return await ended_events(manager, job_id, after)


async def test_job_runs_every_item_through_every_stage_into_the_layout(make_manager, tmp_path: Path):
    manager = await make_manager()
    job = await manager.create(spec(4, name="four"))
    assert job.state == pipeline_pb2.JOB_STATE_QUEUED
    done = await finished(manager, job.id)

    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (
        0
        < done.created_at.ToNanoseconds()
        <= done.started_at.ToNanoseconds()
        <= done.ended_at.ToNanoseconds()
    )
    assert (done.items_succeeded, done.items_failed) == (4, 0)
    assert [(s.stage, s.done, s.failed, s.running) for s in done.stages] == [
        (pipeline_pb2.STAGE_STORY, 4, 0, 0),
        (pipeline_pb2.STAGE_RENDER, 4, 0, 0),
        (pipeline_pb2.STAGE_EVALUATE, 4, 0, 0),
    ]
    directory = tmp_path / "jobs" / job.id
    assert done.directory == str(directory)
    for item in done.items:
        assert item.state == SUCCEEDED and item.stage == pipeline_pb2.STAGE_EVALUATE
        folder = directory / "items" / f"{item.index:05d}"
        assert {p.name for p in folder.iterdir()} == {
            "story.json",
            "image.png",
            "image.json",
            "evaluation.json",
        }
        assert item.artifacts.story_path == f"items/{item.index:05d}/story.json"
        assert item.artifacts.image_path == f"items/{item.index:05d}/image.png"
        assert item.artifacts.evaluation_path == f"items/{item.index:05d}/evaluation.json"
        assert (folder / "image.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert not item.image.data, "items in GetJob carry image metadata only"
        assert item.evaluation.alignment.status.state == common_pb2.EvaluatorStatus.STATE_OK
        assert dict(item.attempts) == {"STAGE_STORY": 1, "STAGE_RENDER": 1, "STAGE_EVALUATE": 1}
    summary = done.summary
    assert summary.items == 4 and summary.diversity.status.state == common_pb2.EvaluatorStatus.STATE_OK
    expected = sum(i.evaluation.alignment.score for i in done.items) / 4
    assert summary.mean_alignment == pytest.approx(expected)
    assert (directory / "summary.json").exists() and (directory / "job.json").exists()
    assert "SUCCEEDED" in (directory / "job.json").read_text()
    assert not list(directory.rglob("*.tmp")), "no temporary file is left behind"


def latest_items(events: list[pipeline_pb2.JobEvent]) -> dict[int, pipeline_pb2.Item]:
    """Each item's latest state in a stream of events."""
    return {e.item.index: e.item for e in events if e.HasField("item")}


async def test_a_live_watch_sees_items_go_through_every_stage_and_the_latest_progress(make_manager):
    # Stories are held until the watch is live: on a loaded machine the job could end before it starts.
    stages = Stages(LocalStory(hold_after=0), LocalRender(), LocalEvaluate())
    manager = await make_manager(stages)
    job = await manager.create(spec(3))
    watch = manager.watch(job.id, 0)
    events = [await anext(watch)]  # the watch is subscribed once its first event is out
    stages.story.sim.release()
    events += [event async for event in watch]

    durable = [e for e in events if not e.HasField("progress")]
    assert events[0].snapshot.id == job.id or events[0].HasField("item")
    sequences = [e.sequence for e in durable if not e.HasField("snapshot")]
    assert sequences == sorted(set(sequences)) and sequences[0] >= 1, "increasing, never repeated"
    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_SUCCEEDED and not events[-1].finished.items
    assert events[-1].counts.items_succeeded == 3
    # Each item went through every stage: running in each, then succeeded, exactly once.
    for index in range(3):
        changes = [
            (e.item.state, e.item.stage) for e in durable if e.HasField("item") and e.item.index == index
        ]
        assert changes.count((SUCCEEDED, pipeline_pb2.STAGE_EVALUATE)) == 1
        for stage in (pipeline_pb2.STAGE_STORY, pipeline_pb2.STAGE_RENDER, pipeline_pb2.STAGE_EVALUATE):
            assert (pipeline_pb2.ITEM_STATE_RUNNING, stage) in changes
    # Every durable event carries the job's counters after it.
    assert all(e.HasField("counts") for e in durable)
    # Progress is not stored (sequence 0); the latest step of each item's render reached the watcher.
    progress = [e for e in events if e.HasField("progress")]
    assert progress and all(e.sequence == 0 for e in progress)
    last_step = {e.progress.item_index: (e.progress.step, e.progress.total) for e in progress}
    assert last_step == {i: (4, 4) for i in range(3)}


async def test_a_watch_that_resumes_gets_what_changed_since_then_the_end(make_manager):
    manager = await make_manager()
    job = await manager.create(spec(3))
    live = await events_of(manager, job.id)
    final = latest_items(live)
    middle = next(e.sequence for e in live if e.HasField("item") and e.item.state == SUCCEEDED)

    replay = await events_of(manager, job.id)
    assert latest_items(replay) == final, "a replay ends where the live watch ended"
    assert [e.item.index for e in replay if e.HasField("item")] == sorted(
        final, key=lambda index: next(e.sequence for e in replay if e.item.index == index)
    )
    assert len([e for e in replay if e.HasField("item")]) == 3, "one event per item: no replay of every step"
    assert not any(e.HasField("progress") for e in replay)
    assert all(e.job_id == job.id for e in replay)
    assert all(e.item.story.text for e in replay if e.HasField("item")), "results are sent unless omitted"
    # Caught up from the store, the items carry the job's counters as of the end that follows them.
    assert all((e.counts.items_succeeded, e.counts.items_failed) == (3, 0) for e in replay)
    resumed = await events_of(manager, job.id, after=middle)
    changed_after = {i for i, item in final.items() if _last_change(live, i) > middle}
    assert {e.item.index for e in resumed if e.HasField("item")} == changed_after
    assert all(e.sequence > middle for e in resumed)
    assert resumed[-1].HasField("finished")
    # After the end, a watch from its last sequence gets only the end.
    ended = await events_of(manager, job.id, after=live[-1].sequence)
    assert [e.WhichOneof("event") for e in ended] == ["finished"]
    # The end read back from the store is the job as stored, as of its last change.
    stored = await manager.get(job.id, omit_items=True)
    assert (ended[0].sequence, ended[0].job_id, ended[0].time) == (
        live[-1].sequence,
        job.id,
        stored.updated_at,
    )
    assert ended[0].finished == stored and ended[0].counts.items_succeeded == 3


def _last_change(events: list[pipeline_pb2.JobEvent], index: int) -> int:
    return max(e.sequence for e in events if e.HasField("item") and e.item.index == index)


async def test_the_store_holds_state_not_steps(make_manager, tmp_path: Path):
    stages = Stages(LocalStory(), LocalRender(steps=50), LocalEvaluate())
    manager = await make_manager(stages)
    job = await finished(manager, (await manager.create(spec(5))).id)
    assert job.items_succeeded == 5
    assert await manager._store.size() == (1, 5), "one row per job and per item, none per step"


async def test_stories_for_later_items_are_written_while_earlier_ones_are_painted(make_manager):
    stages = local_stages(story=0.02, render=0.05, evaluate=0.02)
    manager = await make_manager(stages, policy(concurrency=1))
    job = await manager.create(spec(6))
    await finished(manager, job.id)

    stories, renders = stages.story.sim.spans, stages.render.sim.spans
    overlapping = [(s, r) for s in stories for r in renders if s[0] > r[0] and s[1] < r[2] and r[1] < s[2]]
    assert overlapping, "no story was written while an earlier item was being painted"
    total = max(end for _, _, end in stages.evaluate.sim.spans) - min(start for _, start, _ in stories)
    serial = sum(
        end - start for spans in (stories, renders, stages.evaluate.sim.spans) for _, start, end in spans
    )
    assert total < serial, "stages ran one after another"


async def test_a_slow_stage_holds_back_the_stages_before_it(make_manager):
    stages = local_stages(render=0.1)
    manager = await make_manager(stages, policy(concurrency=1))
    job = await manager.create(spec(20, skip_evaluation=True))
    await finished(manager, job.id)

    first_painted = min(end for _, _, end in stages.render.sim.spans)
    written_before = sum(end <= first_painted for _, _, end in stages.story.sim.spans)
    # Render has 2 workers (one painting, one waiting for the slot) and a queue of 2; the 2 story workers
    # hold finished stories until the queue has room.
    assert written_before <= 6, f"{written_before} of 20 stories written before the first image"


async def test_rerunning_a_seed_reproduces_every_item(make_manager):
    manager = await make_manager()
    first, again, other = [await manager.create(spec(3, seed=seed)) for seed in (11, 11, 12)]
    jobs = [await finished(manager, job.id) for job in (first, again, other)]
    stories = [[i.story.text for i in job.items] for job in jobs]
    images = [
        [(Path(job.directory) / i.artifacts.image_path).read_bytes() for i in job.items] for job in jobs
    ]
    assert stories[0] == stories[1] and images[0] == images[1]
    assert stories[0] != stories[2] and images[0] != images[2]
    assert [i.story_seed for i in jobs[0].items] == [i.story_seed for i in jobs[1].items]
    assert len({i.story_seed for i in jobs[0].items} | {i.image_seed for i in jobs[0].items}) == 6
    assert jobs[0].seed == 11


async def test_transient_failures_are_retried_with_backoff(make_manager):
    faults = {1: [DeadlineExceeded("engine slow"), ResourceExhausted("queue full")]}
    stages = Stages(LocalStory(), LocalRender(faults=faults), LocalEvaluate())
    manager = await make_manager(stages)
    done = await finished(manager, (await manager.create(spec(3))).id)

    assert done.items_succeeded == 3
    assert done.items[1].attempts["STAGE_RENDER"] == 3 and stages.render.sim.calls[1] == 3
    assert done.items[0].attempts["STAGE_RENDER"] == 1


async def test_an_item_that_keeps_failing_is_failed_naming_the_stage_and_the_job_goes_on(make_manager):
    stages = Stages(
        LocalStory(), LocalRender(faults={2: [ResourceExhausted("painter queue full")] * 9}), LocalEvaluate()
    )
    manager = await make_manager(stages)
    done = await finished(manager, (await manager.create(spec(4))).id)

    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert (done.items_succeeded, done.items_failed) == (3, 1)
    failed = done.items[2]
    assert failed.state == FAILED and failed.stage == pipeline_pb2.STAGE_RENDER
    assert failed.error.startswith("render failed after 3 attempt(s): ResourceExhausted")
    assert "painter queue full" in failed.error
    assert stages.render.sim.calls[2] == 3 and 2 not in stages.evaluate.sim.calls
    assert [(s.stage, s.failed) for s in done.stages][1] == (pipeline_pb2.STAGE_RENDER, 1)
    # The summary counts every item; the one never evaluated is counted apart, with its reason.
    assert (done.summary.items, done.summary.items_not_evaluated) == (4, 1)
    assert done.summary.not_evaluated_reasons[0].reason == failed.error
    assert done.summary.alignment_counts.ok == 3


async def test_items_wait_for_an_unavailable_service_then_go_on(make_manager):
    """Far more UNAVAILABLE answers than retry attempts: the items wait at the render gate, one probe at
    a time, and all succeed once the service answers; the job shows the stage waiting meanwhile."""
    outage = [Unavailable("painter restarting")] * 12
    stages = Stages(LocalStory(), LocalRender(faults={1: list(outage), 2: list(outage)}), LocalEvaluate())
    manager = await make_manager(stages, wait=WaitPolicy(max_wait_s=30, first_probe_s=0.01, max_probe_s=0.02))
    job = await manager.create(spec(4))
    events = await events_of(manager, job.id)
    done = await manager.get(job.id)

    assert (done.items_succeeded, done.items_failed) == (4, 0)
    waiting = [
        e.item for e in events if e.HasField("item") and e.item.state == pipeline_pb2.ITEM_STATE_WAITING
    ]
    assert waiting, "no item was shown waiting"
    assert {w.waiting.service for w in waiting} == {"render"}
    assert all("painter restarting" in w.waiting.reason for w in waiting)
    assert all(w.waiting.deadline.ToSeconds() - w.waiting.since.ToSeconds() >= 29 for w in waiting)
    assert all(w.waiting.since.ToNanoseconds() >= job.created_at.ToNanoseconds() for w in waiting)
    running = [
        e.item for e in events if e.HasField("item") and e.item.state == pipeline_pb2.ITEM_STATE_RUNNING
    ]
    assert not [item.index for item in running if item.HasField("waiting")], "running, and shown waiting"
    render = [
        c
        for e in events
        if e.HasField("counts")
        for c in e.counts.stages
        if c.stage == pipeline_pb2.STAGE_RENDER
    ]
    assert any(c.waiting and c.wait.service == "render" for c in render), "the stage never showed waiting"
    assert not done.stages[1].waiting and not done.stages[1].HasField("wait")
    # Each item's render ran at most once after the service came back, and none was redone.
    assert all(count == 1 for index, count in stages.evaluate.sim.calls.items())
    assert sum(stages.render.sim.calls.values()) == 4 + 24, "every UNAVAILABLE answer and 4 successes"


async def test_an_item_shows_waiting_until_its_service_answers_not_at_each_probe(make_manager):
    """Probes of the closed gate count as attempts, but the item shows waiting until one is answered."""
    outage = {0: [Unavailable("painter restarting")] * 3}
    stages = Stages(LocalStory(), LocalRender(faults=outage), LocalEvaluate())
    manager = await make_manager(stages, wait=WaitPolicy(max_wait_s=30, first_probe_s=0.01, max_probe_s=0.02))
    job = await manager.create(spec(1))
    events = await events_of(manager, job.id)
    done = await manager.get(job.id)

    render = [
        (e.item.state, e.item.HasField("image"))
        for e in events
        if e.HasField("item") and e.item.stage == pipeline_pb2.STAGE_RENDER
    ]
    waited = render.index((pipeline_pb2.ITEM_STATE_WAITING, False))
    assert (pipeline_pb2.ITEM_STATE_RUNNING, False) not in render[waited:], "a probe showed the item running"
    assert done.items[0].state == SUCCEEDED and done.items[0].attempts["STAGE_RENDER"] == 4


async def test_an_item_that_waited_its_max_wait_fails_and_other_errors_fail_at_once(make_manager):
    stages = Stages(
        LocalStory(faults={0: [InvalidArgument("too long", field="prompt")]}),
        LocalRender(faults={1: [Unavailable("painter gone")] * 1000}),
        LocalEvaluate(),
    )
    manager = await make_manager(
        stages, wait=WaitPolicy(max_wait_s=0.3, first_probe_s=0.01, max_probe_s=0.05)
    )
    done = await finished(manager, (await manager.create(spec(3))).id)

    assert [i.state for i in done.items] == [FAILED, FAILED, SUCCEEDED]
    assert stages.story.sim.calls[0] == 1, "an error that is not transient is not retried or waited on"
    assert done.items[1].error.startswith("render failed after ")
    assert not done.items[1].HasField("waiting"), "failed, and shown waiting"
    assert "Unavailable: waited 0.3 s for render to come back: " in done.items[1].error
    assert "painter gone" in done.items[1].error
    # A job's own max_wait_s wins over the orchestrator's default.
    quick = await finished(manager, (await manager.create(spec(2, max_wait_s=0.05))).id)
    assert "waited 0.05 s for render" in quick.items[1].error


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (InvalidArgument("too long", field="prompt"), "InvalidArgument: prompt: too long"),
        (Internal("the engine crashed on this prompt"), "Internal: the engine crashed on this prompt"),
    ],
)
async def test_errors_that_are_not_transient_fail_the_item_at_once(make_manager, error, message):
    stages = Stages(LocalStory(faults={0: [error]}), LocalRender(), LocalEvaluate())
    manager = await make_manager(stages)
    done = await finished(manager, (await manager.create(spec(2))).id)

    assert stages.story.sim.calls[0] == 1
    assert done.items[0].state == FAILED
    assert done.items[0].error == f"story failed after 1 attempt(s): {message}"
    assert done.items[1].state == SUCCEEDED


async def test_a_stage_past_its_deadline_counts_as_transient(make_manager):
    stages = local_stages(story=0.5)
    manager = await make_manager(stages, policy(deadline_s=0.05))
    done = await finished(manager, (await manager.create(spec(1))).id)

    assert done.items[0].state == FAILED and stages.story.sim.calls[0] == 3
    assert "DeadlineExceeded" in done.items[0].error and "0.05 s" in done.items[0].error


async def test_cancel_ends_the_job_and_its_unfinished_items(make_manager):
    manager = await make_manager(local_stages(render=0.2))
    job = await manager.create(spec(6))
    async for event in manager.watch(job.id):
        if event.item.state == SUCCEEDED:
            break
    cancelled = await manager.cancel(job.id)

    assert cancelled.state == pipeline_pb2.JOB_STATE_CANCELLED
    states = [i.state for i in cancelled.items]
    assert SUCCEEDED in states and pipeline_pb2.ITEM_STATE_CANCELLED in states
    assert set(states) <= {SUCCEEDED, pipeline_pb2.ITEM_STATE_CANCELLED}
    events = await events_of(manager, job.id)
    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_CANCELLED
    with pytest.raises(
        FailedPrecondition, match="job_id: job .* has already ended \\(JOB_STATE_CANCELLED\\)"
    ):
        await manager.cancel(job.id)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"items": 0}, "spec.items"),
        ({"items": 101}, "spec.items"),
        ({"story": {"mode": 9}}, "spec.story.mode"),
        ({"render": {"painter": "picasso"}}, "spec.render.painter"),
        ({"story": {"engine": "gpt-9"}}, "spec.story.engine"),
        ({"evaluators": [evaluation_pb2.EVALUATOR_ALIGNMENT, 42]}, "spec.evaluators[1]"),
        ({"render": {"format": 7}}, "spec.render.format"),
    ],
)
async def test_bad_specs_are_refused_naming_the_field(make_manager, fields, field):
    manager = await make_manager()
    bad = pipeline_pb2.JobSpec(**{"items": 1, **fields})
    with pytest.raises(InvalidArgument) as raised:
        await manager.create(bad)
    assert raised.value.field == field
    assert (await manager.list_jobs())[0] == []


async def test_unknown_jobs_are_not_found(make_manager):
    manager = await make_manager()
    with pytest.raises(NotFound, match="job_id: no job 'nope'"):
        await manager.get("nope")
    with pytest.raises(NotFound):
        await manager.cancel("nope")
    with pytest.raises(NotFound):
        await events_of(manager, "nope")
    with pytest.raises(NotFound):
        await manager.list_items("nope")
    with pytest.raises(InvalidArgument, match="job_id: required"):
        await manager.get("")


async def test_a_repeated_create_with_the_same_request_id_returns_the_same_job(make_manager):
    manager = await make_manager()
    first = await manager.create(spec(2), request_id="abc")
    again = await manager.create(spec(2), request_id="abc")
    assert again.id == first.id and len((await manager.list_jobs())[0]) == 1
    with pytest.raises(AlreadyExists, match="request_id: already used by job"):
        await manager.create(spec(3), request_id="abc")
    await finished(manager, first.id)


class CountsValidations(LocalStory):
    def __init__(self):
        super().__init__()
        self.validations = 0

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        self.validations += 1
        await super().validate(spec)


async def test_a_repeated_create_returns_the_job_without_asking_the_services_again(make_manager):
    story = CountsValidations()
    manager = await make_manager(Stages(story, LocalRender(), LocalEvaluate()))
    first = await manager.create(spec(1), request_id="abc")
    assert (await manager.create(spec(1), request_id="abc")).id == first.id
    assert story.validations == 1
    assert manager._creating == {}, "a key's lock outlived its creates"
    await finished(manager, first.id)


class HeldCreate:
    """Holds the store's commit of the job created with request id `key` until `release`."""

    def __init__(self, manager, key: str):
        self.arrived, self._released, self._key = asyncio.Event(), asyncio.Event(), key
        self._commit = manager._store.commit

    async def __call__(self, change) -> None:
        if change.request_id == self._key:
            self.arrived.set()
            await self._released.wait()
        await self._commit(change)

    def release(self) -> None:
        self._released.set()


async def test_a_create_held_up_does_not_hold_up_creates_with_other_request_ids(make_manager, monkeypatch):
    manager = await make_manager()
    monkeypatch.setattr(manager._store, "commit", held := HeldCreate(manager, "slow"))
    slow = asyncio.ensure_future(manager.create(spec(1), request_id="slow"))
    await asyncio.wait_for(held.arrived.wait(), 10)
    quick = await asyncio.wait_for(manager.create(spec(1), request_id="quick"), 5)
    held.release()
    jobs = [await slow, quick]
    assert len({job.id for job in jobs}) == 2 and manager._creating == {}
    for job in jobs:
        await finished(manager, job.id)


class ValidatesTogether(LocalStory):
    """Holds each validation until `parties` creates are validating at once."""

    def __init__(self, parties: int):
        super().__init__()
        self._barrier = asyncio.Barrier(parties)

    async def validate(self, spec: pipeline_pb2.JobSpec) -> None:
        await self._barrier.wait()
        await super().validate(spec)


async def test_concurrent_creates_with_the_same_request_id_make_one_job(make_manager):
    """Both creates find no job for the key, then wait on the services' validation together: the second
    must see the job the first made meanwhile (not crash on the store's unique key)."""
    manager = await make_manager(Stages(ValidatesTogether(parties=2), LocalRender(), LocalEvaluate()))
    same = [manager.create(spec(2), request_id="retried") for _ in range(2)]
    first, second = await asyncio.wait_for(asyncio.gather(*same), 10)
    assert first.id == second.id
    assert [job.id for job in (await manager.list_jobs())[0]] == [first.id]
    await finished(manager, first.id)


async def test_concurrent_creates_with_the_same_request_id_and_other_specs_make_one_job(make_manager):
    manager = await make_manager(Stages(ValidatesTogether(parties=2), LocalRender(), LocalEvaluate()))
    creates = [manager.create(spec(items), request_id="retried") for items in (2, 3)]
    outcomes = await asyncio.wait_for(asyncio.gather(*creates, return_exceptions=True), 10)
    jobs = [o for o in outcomes if isinstance(o, pipeline_pb2.Job)]
    refused = [o for o in outcomes if not isinstance(o, pipeline_pb2.Job)]
    assert len(jobs) == 1 and [type(error) for error in refused] == [AlreadyExists]
    assert "request_id: already used by job" in str(refused[0])
    assert [job.id for job in (await manager.list_jobs())[0]] == [jobs[0].id]
    await finished(manager, jobs[0].id)


async def test_list_pages_through_jobs_newest_first_and_filters_by_state(make_manager):
    manager = await make_manager()
    ids = [(await manager.create(spec(1, skip_render=True, skip_evaluation=True))).id for _ in range(5)]
    for job_id in ids:
        await finished(manager, job_id)
    pages, token = [], ""
    while True:
        jobs, token = await manager.list_jobs(page_size=2, page_token=token)
        pages.append([job.id for job in jobs])
        assert all(not job.items for job in jobs)
        if not token:
            break
    assert pages == [ids[4:2:-1], ids[2:0:-1], ids[:1]]
    assert len((await manager.list_jobs(states=[pipeline_pb2.JOB_STATE_SUCCEEDED]))[0]) == 5
    assert (await manager.list_jobs(states=[pipeline_pb2.JOB_STATE_RUNNING]))[0] == []
    with pytest.raises(InvalidArgument, match="page_token"):
        await manager.list_jobs(page_token="garbage")
    with pytest.raises(InvalidArgument, match="page_size"):
        await manager.list_jobs(page_size=-1)


async def test_skipped_stages_are_not_run(make_manager):
    stages = local_stages()
    manager = await make_manager(stages)
    stories_only = await finished(
        manager, (await manager.create(spec(2, skip_render=True, skip_evaluation=True))).id
    )
    assert [i.state for i in stories_only.items] == [SUCCEEDED] * 2
    assert not stories_only.items[0].HasField("image") and not stories_only.HasField("summary")
    no_images = await finished(manager, (await manager.create(spec(2, skip_render=True))).id)
    assert no_images.items[0].evaluation.alignment.status.reason == "no image"
    assert no_images.summary.alignment_status.state == common_pb2.EvaluatorStatus.STATE_NOT_RUN
    assert sum(stages.render.sim.calls.values()) == 0


async def test_only_diversity_skips_the_per_item_evaluation(make_manager):
    stages = local_stages()
    manager = await make_manager(stages)
    done = await finished(
        manager, (await manager.create(spec(3, evaluators=[evaluation_pb2.EVALUATOR_DIVERSITY]))).id
    )
    assert not stages.evaluate.sim.calls and len(stages.evaluate.summaries) == 1
    assert not stages.evaluate.summaries[0].skip_diversity
    assert done.summary.diversity.k == 2 and len(done.summary.diversity.per_story) == 3


async def test_a_failing_set_evaluation_is_reported_and_the_job_still_succeeds(make_manager):
    class NoSummary(LocalEvaluate):
        async def summarize(self, request):
            raise DeadlineExceeded("embedder too slow")

    manager = await make_manager(Stages(LocalStory(), LocalRender(), NoSummary()))
    done = await finished(manager, (await manager.create(spec(2))).id)
    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert done.summary.alignment_status.state == common_pb2.EvaluatorStatus.STATE_FAILED
    assert "embedder too slow" in done.summary.alignment_status.reason
    assert not done.summary.HasField("mean_alignment")


async def test_run_item_runs_one_item_synchronously_and_keeps_nothing(make_manager, tmp_path: Path):
    manager = await make_manager()
    item = await manager.run_item(spec(1, seed=5))
    assert item.state == SUCCEEDED and item.image.data[:4] == b"\x89PNG"
    assert item.evaluation.complexity.status.state == common_pb2.EvaluatorStatus.STATE_OK
    job = await finished(manager, (await manager.create(spec(1, seed=5))).id)
    assert job.items[0].story.text == item.story.text, "RunItem and item 0 of a job share seeds"
    assert [listed.id for listed in (await manager.list_jobs())[0]] == [job.id]
    assert not list((tmp_path / "scratch").iterdir())


ITEM_0_ARTIFACTS = {"00000/story.json", "00000/image.png", "00000/image.json", "00000/evaluation.json"}


@pytest.mark.parametrize(("fsync", "synced_items"), [(False, set()), (True, {"00000", *ITEM_0_ARTIFACTS})])
async def test_run_item_writes_its_artifacts_as_durably_as_its_files_are_set_to(
    make_manager, monkeypatch, fsync, synced_items
):
    """RunItem's scratch files are not synced (the manager's choice), and the runner follows its files'
    setting: synced, each artifact is synced, then its directory entry."""
    synced: list[str] = []
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(os.readlink(f"/proc/self/fd/{fd}")))
    monkeypatch.setattr(jobs_module, "JobFiles", lambda directory, **_: JobFiles(directory, fsync=fsync))
    manager = await make_manager()
    item = await manager.run_item(spec(1, seed=5))
    assert item.state == SUCCEEDED
    assert {path.split("/items/", 1)[1] for path in synced if "/items/" in path} == synced_items


async def test_jobs_beyond_the_running_cap_wait_queued(make_manager):
    manager = await make_manager(local_stages(story=0.3), max_running_jobs=1)
    first, second = await manager.create(spec(1)), await manager.create(spec(1))
    async for event in manager.watch(first.id):
        if (
            event.job_state == pipeline_pb2.JOB_STATE_RUNNING
            or event.snapshot.state == pipeline_pb2.JOB_STATE_RUNNING
        ):
            break
    assert (await manager.get(second.id)).state == pipeline_pb2.JOB_STATE_QUEUED
    second_done = await finished(manager, second.id)
    assert second_done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    first_done = await manager.get(first.id)
    assert second_done.started_at.ToNanoseconds() >= first_done.ended_at.ToNanoseconds()


async def test_fifty_concurrent_clients_creating_and_watching_lose_no_event(make_manager):
    manager = await make_manager(local_stages(story=0.001, render=0.002), max_running_jobs=50)

    async def client(number: int) -> tuple[str, list[pipeline_pb2.JobEvent], list[pipeline_pb2.JobEvent]]:
        job = await manager.create(spec(3, seed=number))
        # A second watcher joins late and resumes after the first few changes.
        first, late = await asyncio.gather(events_of(manager, job.id), events_of(manager, job.id, after=3))
        return job.id, first, late

    results = await asyncio.gather(*(client(n) for n in range(50)))
    for job_id, events, late in results:
        sequences = [e.sequence for e in events if e.HasField("item")]
        assert sequences == sorted(set(sequences)), "a watcher got a change twice or out of order"
        final = latest_items(events)
        assert latest_items(await events_of(manager, job_id)) == final, "a watcher missed a change"
        assert {i: item.state for i, item in latest_items(late).items()} == {i: SUCCEEDED for i in range(3)}
        assert all(e.sequence > 3 for e in late if e.HasField("item"))
        assert events[-1].finished.items_succeeded == 3 == late[-1].finished.items_succeeded


async def test_concurrent_cancels_end_the_job_once(make_manager):
    manager = await make_manager(local_stages(story=0.1))
    job = await manager.create(spec(4))
    watcher = asyncio.create_task(events_of(manager, job.id))
    await asyncio.sleep(0.05)
    first, second = await asyncio.gather(manager.cancel(job.id), manager.cancel(job.id))
    assert first.state == second.state == pipeline_pb2.JOB_STATE_CANCELLED
    events = await asyncio.wait_for(watcher, 5)
    assert sum(e.HasField("finished") for e in events) == 1
    assert {i.state for i in first.items} == {pipeline_pb2.ITEM_STATE_CANCELLED}


async def test_items_of_a_large_job_are_paged_and_get_job_refuses_them_all_at_once(make_manager):
    manager = await make_manager(local_stages(render=0.01), max_items=300, max_items_per_get=50)
    job = await manager.create(spec(120, skip_evaluation=True))
    with pytest.raises(
        FailedPrecondition, match="omit_items: job .* has 120 items, more than GetJob returns"
    ):
        await manager.get(job.id)
    # While it runs, items that have not started are listed as pending, in index order.
    running, _ = await manager.list_items(job.id, page_size=120)
    assert [i.index for i in running] == list(range(120))
    assert pipeline_pb2.ITEM_STATE_PENDING in {i.state for i in running}
    assert all(i.story_seed for i in running), "pending items carry their seeds"
    done = await finished(manager, job.id, items=False)
    assert done.items_succeeded == 120 and not done.items

    pages, token = [], ""
    while True:
        items, token = await manager.list_items(job.id, page_size=50, page_token=token, omit_results=True)
        pages.append([i.index for i in items])
        assert all(not i.HasField("story") and i.artifacts.story_path for i in items)
        if not token:
            break
    assert pages == [list(range(50)), list(range(50, 100)), list(range(100, 120))]
    succeeded, _ = await manager.list_items(job.id, states=[SUCCEEDED], page_size=1000)
    assert len(succeeded) == 120 and succeeded[0].story.text
    assert (await manager.list_items(job.id, states=[FAILED]))[0] == []
    with pytest.raises(InvalidArgument, match="page_token"):
        await manager.list_items(job.id, page_token="garbage")
    with pytest.raises(InvalidArgument, match="page_size"):
        await manager.list_items(job.id, page_size=-1)


async def test_cancel_ends_items_waiting_for_a_service_and_every_watcher_sees_them_cancelled(make_manager):
    outage = {index: [Unavailable("painter restarting")] * 1000 for index in range(3)}
    stages = Stages(LocalStory(), LocalRender(faults=outage), LocalEvaluate())
    manager = await make_manager(stages, wait=WaitPolicy(max_wait_s=30, first_probe_s=0.01, max_probe_s=0.02))
    job = await manager.create(spec(3))
    latest: dict[int, int] = {}
    async with asyncio.timeout(30):
        async for event in manager.watch(job.id):
            if event.HasField("item"):
                latest[event.item.index] = event.item.state
            if latest == {i: pipeline_pb2.ITEM_STATE_WAITING for i in range(3)}:
                break
    cancelled = await manager.cancel(job.id)
    events = await events_of(manager, job.id, after=event.sequence)

    assert [i.state for i in cancelled.items] == [pipeline_pb2.ITEM_STATE_CANCELLED] * 3
    assert not [i.index for i in cancelled.items if i.HasField("waiting")]
    items = [e.item for e in events if e.HasField("item")]
    assert sorted((i.index, i.state) for i in items) == [
        (i, pipeline_pb2.ITEM_STATE_CANCELLED) for i in range(3)
    ]
    assert not [i.index for i in items if i.HasField("waiting")]
    assert [(s.running, s.waiting, s.HasField("wait")) for s in cancelled.stages] == [(0, 0, False)] * 3


async def test_items_are_fed_a_chunk_at_a_time_each_once(make_manager, monkeypatch):
    monkeypatch.setattr(runner, "FEED_CHUNK", 4)  # 10 items: chunks of 4, 4 and 2
    stages = local_stages()
    manager = await make_manager(stages)
    done = await finished(
        manager, (await manager.create(spec(10, skip_render=True, skip_evaluation=True))).id
    )
    assert (done.items_succeeded, [i.index for i in done.items]) == (10, list(range(10)))
    assert stages.story.sim.calls == Counter(range(10)), "an item was fed twice, or never"


async def test_only_a_job_that_succeeded_gets_its_gallery(make_manager):
    shown: list[tuple[int, list[int]]] = []

    def gallery(directory: Path, job: pipeline_pb2.Job, items) -> Path:
        shown.append((job.state, [record.index for record in items()]))
        page = directory / "gallery.html"
        page.write_text("the gallery")
        return page

    stages = Stages(LocalStory(hold_after=2), LocalRender(), LocalEvaluate())
    manager = await make_manager(stages, gallery=gallery)
    done = await finished(manager, (await manager.create(spec(2))).id)
    assert done.gallery_path == str(Path(done.directory) / "gallery.html")
    assert shown == [(pipeline_pb2.JOB_STATE_SUCCEEDED, [0, 1])]

    second = await manager.create(spec(2))  # its stories are held: it is cancelled before they are written
    await until_held(stages.story.sim, 2, manager, second.id)
    cancelled = await manager.cancel(second.id)
    assert cancelled.state == pipeline_pb2.JOB_STATE_CANCELLED and not cancelled.gallery_path
    assert len(shown) == 1


async def test_a_resumed_job_ended_before_it_fed_its_items_again_shows_no_stage_running(tmp_path: Path):
    """Items stored as running or waiting count in the job's counters until they are fed again; a job
    that ends first (cancelled at once) leaves none of them in a stage."""
    stages = (pipeline_pb2.STAGE_STORY, pipeline_pb2.STAGE_RENDER, pipeline_pb2.STAGE_EVALUATE)
    job = pipeline_pb2.Job(id="resumed", spec=spec(3), seed=7, directory=str(tmp_path), items_succeeded=1)
    job.state = pipeline_pb2.JOB_STATE_RUNNING
    for stage, done, running, waiting in zip(stages, (3, 1, 1), (0, 1, 0), (0, 1, 0), strict=True):
        job.stages.add(stage=stage, done=done, running=running, waiting=waiting)
    ended = runner.JobRunner(
        job,
        stages=local_stages(),
        policy=policy(),
        limits=policy().limits(),
        gates={stage: ServiceGate(service, WaitPolicy()) for stage, service in STAGE_SERVICES.items()},
        files=JobFiles(tmp_path, fsync=False),
        journal=Journal(job.id, 0, None, None),
        resumed=True,
    )
    await ended.end(pipeline_pb2.JOB_STATE_CANCELLED)
    assert ended.job.state == pipeline_pb2.JOB_STATE_CANCELLED and ended.job.items_succeeded == 1
    assert [(s.stage, s.done, s.running, s.waiting) for s in ended.job.stages] == [
        (pipeline_pb2.STAGE_STORY, 3, 0, 0),
        (pipeline_pb2.STAGE_RENDER, 1, 0, 0),
        (pipeline_pb2.STAGE_EVALUATE, 1, 0, 0),
    ]


async def test_items_that_never_started_are_cancelled_with_their_job(make_manager):
    manager = await make_manager(local_stages(story=0.2), max_items=100)
    job = await manager.create(spec(40))
    await asyncio.sleep(0.3)
    cancelled = await manager.cancel(job.id)
    states = [i.state for i in cancelled.items]
    assert len(states) == 40 and set(states) <= {SUCCEEDED, pipeline_pb2.ITEM_STATE_CANCELLED}
    assert states.count(pipeline_pb2.ITEM_STATE_CANCELLED) > 30
    listed, _ = await manager.list_items(job.id, states=[pipeline_pb2.ITEM_STATE_CANCELLED], page_size=100)
    assert len(listed) == states.count(pipeline_pb2.ITEM_STATE_CANCELLED)
    assert all(not c.running and not c.waiting for c in cancelled.stages)


# Creating jobs.

ALICE = Principal("alice", frozenset({Scope.READ, Scope.WRITE}))


def held_stories() -> Stages:
    """Stages whose story calls all wait until `stages.story.sim.release()`: the job stays running."""
    return Stages(LocalStory(hold_after=0), LocalRender(), LocalEvaluate())


async def test_a_new_job_is_stamped_and_takes_a_random_seed_when_its_spec_has_none(make_manager, monkeypatch):
    monkeypatch.setattr(jobs_module, "random_seed", lambda: 4242)
    manager = await make_manager()
    before = time.time_ns()
    job = await manager.create(spec(1, seed=None, skip_render=True, skip_evaluation=True))
    after = time.time_ns()
    assert job.seed == 4242 and not job.spec.HasField("seed")
    assert before <= job.created_at.ToNanoseconds() <= job.updated_at.ToNanoseconds() <= after
    assert (await manager.get(job.id)).created_at == job.created_at
    await finished(manager, job.id)


async def test_a_job_holds_a_running_slot_of_its_owners_quota(make_manager):
    quotas = Quotas(overrides={"alice": QuotaLimits(running_jobs=1)})
    stages = held_stories()
    manager = await make_manager(stages, quotas=quotas)
    job = await manager.create(spec(1), caller=ALICE)
    assert (quotas.running("alice"), quotas.running("")) == (1, 0)
    with pytest.raises(ResourceExhausted, match="identity 'alice' has 1 jobs queued or running"):
        await manager.create(spec(1), caller=ALICE)
    await manager.create(spec(1))  # another identity's quota
    stages.story.sim.release()
    await finished(manager, job.id)


async def test_a_create_that_cannot_write_the_job_leaves_no_job_and_gives_its_slot_back(
    make_manager, tmp_path
):
    """Nothing is stored unless job.json is written: a stored job that never ran would be returned to a
    retry with the same request id, and could not be cancelled."""
    quotas = Quotas(overrides={"alice": QuotaLimits(running_jobs=1)})
    manager = await make_manager(quotas=quotas)
    (tmp_path / "jobs").write_text("a file where the jobs' directories go")
    with pytest.raises(OSError):
        await manager.create(spec(1), "retried", caller=ALICE)
    assert quotas.running("alice") == 0
    assert (await manager.list_jobs(caller=ALICE))[0] == []
    (tmp_path / "jobs").unlink()
    job = await manager.create(spec(1), "retried", caller=ALICE)
    assert (await finished(manager, job.id)).state == pipeline_pb2.JOB_STATE_SUCCEEDED


async def test_creating_a_job_does_not_wait_for_the_disk(make_manager, monkeypatch):
    """The store's commit makes a new job durable; its job.json is a copy written without fsync, so that
    CreateJob does not wait for the disk."""
    manager = await make_manager()
    synced: list[int] = []
    monkeypatch.setattr(os, "fsync", synced.append)
    job = await manager.create(spec(1))
    assert synced == []
    assert (Path(job.directory) / "job.json").exists()
    monkeypatch.undo()
    await finished(manager, job.id)


async def test_a_new_job_makes_its_own_artifacts_whatever_its_directory_holds(
    make_manager, tmp_path: Path, monkeypatch
):
    """Only a resumed job reads artifacts back: a new one does not trust files it did not write (left by
    an orchestrator whose database was lost, say)."""
    fixed = uuid.UUID(int=1)
    monkeypatch.setattr(uuid, "uuid4", lambda: fixed)
    planted = common_pb2.Story(id="planted-0", text="PLANTED")
    JobFiles(tmp_path / "jobs" / fixed.hex, fsync=False).write_story(0, planted)
    stages = local_stages()
    manager = await make_manager(stages)
    done = await finished(manager, (await manager.create(spec(1, skip_render=True, skip_evaluation=True))).id)
    assert done.id == fixed.hex and stages.story.sim.calls[0] == 1
    assert done.items[0].story.text and "PLANTED" not in done.items[0].story.text


# Watching jobs.


async def test_a_job_watched_from_its_creation_gets_every_change_numbered_from_1_without_gaps(make_manager):
    """The first job holds the only running slot, so the second is seen as created: a snapshot at sequence
    1, then every change of its run, live."""
    stages = held_stories()
    manager = await make_manager(stages, max_running_jobs=1)
    await manager.create(spec(1))
    job = await manager.create(spec(2))
    watch = manager.watch(job.id)
    snapshot = await anext(watch)
    stages.story.sim.release()
    events = [snapshot] + [event async for event in watch]

    assert (snapshot.sequence, snapshot.job_id, snapshot.snapshot.state) == (
        1,
        job.id,
        pipeline_pb2.JOB_STATE_QUEUED,
    )
    assert snapshot.time.ToNanoseconds() >= job.created_at.ToNanoseconds()
    durable = [e for e in events if not e.HasField("progress")]  # progress is not stored: sequence 0
    assert [e.sequence for e in durable] == list(range(1, len(durable) + 1))
    assert durable[1].job_state == pipeline_pb2.JOB_STATE_RUNNING
    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_SUCCEEDED


@pytest.mark.parametrize("after", [-1, -100])
async def test_a_negative_sequence_to_watch_after_is_refused_naming_the_field(make_manager, after):
    manager = await make_manager()
    with pytest.raises(InvalidArgument) as raised:
        await events_of(manager, "0" * 32, after)
    assert raised.value.details == f"after_sequence: must be >= 0, got {after}"


async def test_a_watch_can_omit_results_from_the_changes_it_catches_up_and_the_live_ones(make_manager):
    stages = held_stories()
    manager = await make_manager(stages)
    job = await manager.create(spec(2))
    watch = manager.watch(job.id, omit_results=True)
    live = [await anext(watch)]
    stages.story.sim.release()
    live += [event async for event in watch]
    replay = [event async for event in manager.watch(job.id, omit_results=True)]

    for events in (live, replay):
        done = [e.item for e in events if e.HasField("item") and e.item.state == SUCCEEDED]
        assert sorted(item.index for item in done) == [0, 1]
        assert all(item.artifacts.story_path and item.artifacts.image_path for item in done)
        assert not any(item.HasField(name) for item in done for name in ("story", "image", "evaluation"))


async def test_a_watch_catches_up_a_page_at_a_time_without_missing_or_repeating_an_item(
    make_manager, monkeypatch
):
    monkeypatch.setattr(jobs_module, "CATCH_UP_PAGE", 3)  # 7 items: pages of 3, 3 and 1
    manager = await make_manager()
    job = await manager.create(spec(7, skip_render=True, skip_evaluation=True))
    await finished(manager, job.id)
    caught_up = [e for e in await events_of(manager, job.id) if e.HasField("item")]
    assert sorted(e.item.index for e in caught_up) == list(range(7))
    sequences = [e.sequence for e in caught_up]
    assert sequences == sorted(set(sequences))


class PausesMidRender(LocalRender):
    """Each render reports step 2 of 4 once `step` is set, then waits for `resume`."""

    def __init__(self):
        super().__init__()
        self.entered, self.step, self.reported, self.resume = (asyncio.Event() for _ in range(4))

    async def render(self, request, progress=None):
        self.entered.set()
        await self.step.wait()
        progress(2, 4)
        self.reported.set()
        await self.resume.wait()
        return await super().render(request, progress)


async def test_a_watcher_that_joins_mid_render_gets_the_latest_step_at_once(make_manager):
    render = PausesMidRender()
    manager = await make_manager(Stages(LocalStory(), render, LocalEvaluate()))
    job = await manager.create(spec(1, skip_evaluation=True))
    await asyncio.wait_for(render.entered.wait(), 10)
    await manager._store.flush()  # the item's earlier changes are out: none of them clears the step
    render.step.set()
    await render.reported.wait()
    watch = manager.watch(job.id)
    events = [await anext(watch)]
    while not events[-1].HasField("snapshot"):
        events.append(await anext(watch))
    # Right after the snapshot, not at the next step: the render stays paused.
    joined = await asyncio.wait_for(anext(watch), 5)
    assert joined.progress == pipeline_pb2.StageProgress(
        item_index=0, stage=pipeline_pb2.STAGE_RENDER, step=2, total=4
    )
    render.resume.set()
    assert [event async for event in watch][-1].finished.items_succeeded == 1


async def test_a_watcher_that_falls_behind_catches_up_from_the_store_and_sees_the_end(make_manager):
    """With room for 2 buffered events, the cancel's cancelled items and its end overflow the watcher while
    it waits: it reads them back from the store instead."""
    stages = held_stories()
    manager = await make_manager(stages, watch_backlog=2)
    job = await manager.create(spec(4))
    watch = manager.watch(job.id)
    seen: dict[int, int] = {}
    async for event in watch:  # until both story slots hold an item
        if event.HasField("item"):
            seen[event.item.index] = event.item.state
        if seen == {0: pipeline_pb2.ITEM_STATE_RUNNING, 1: pipeline_pb2.ITEM_STATE_RUNNING}:
            break
    rest = asyncio.ensure_future(anext_all(watch))
    await manager.cancel(job.id)
    events = await asyncio.wait_for(rest, 10)

    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_CANCELLED
    latest = latest_items(events)
    assert (latest[0].state, latest[1].state) == (pipeline_pb2.ITEM_STATE_CANCELLED,) * 2


async def anext_all(watch) -> list[pipeline_pb2.JobEvent]:
    return [event async for event in watch]


async def test_a_live_watch_skips_a_change_it_already_read_and_delivers_the_ones_after_it(make_manager):
    """A change committed before the watch read the job can be published after it subscribed: the watch
    skips it, and still delivers what follows it in the same batch."""
    stages = held_stories()
    manager = await make_manager(stages)
    job = await manager.create(spec(2))
    watch = manager.watch(job.id)
    events = [await anext(watch)]
    while not events[-1].HasField("snapshot"):
        events.append(await anext(watch))
    read = events[-1].sequence
    late = pipeline_pb2.JobEvent(sequence=read, job_id=job.id, job_state=pipeline_pb2.JOB_STATE_RUNNING)
    manager._feeds.publish(job.id, late)  # buffered, with every change after it: the watch is not read
    stages.story.sim.release()
    await finished(manager, job.id)
    rest = await asyncio.wait_for(anext_all(watch), 5)  # all buffered: nothing more to wait for
    assert read not in [e.sequence for e in rest]
    assert rest[-1].finished.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert {i: item.state for i, item in latest_items(rest).items()} == {0: SUCCEEDED, 1: SUCCEEDED}


async def test_a_watch_that_ends_leaves_no_feed_behind(make_manager):
    manager = await make_manager(held_stories())
    job = await manager.create(spec(2))
    watch = manager.watch(job.id)
    await anext(watch)
    await manager.cancel(job.id)
    assert [event async for event in watch][-1].HasField("finished")
    assert job.id not in manager._feeds._feeds, "the ended job's feed outlived its last watcher"


# Paging through items.


def token(text: str) -> str:
    """A page token made by hand (tokens are base64 of "kind:position")."""
    return base64.urlsafe_b64encode(text.encode()).decode()


async def test_page_tokens_not_made_by_the_item_listing_are_refused_naming_the_field(make_manager):
    manager = await make_manager()
    job = await finished(manager, (await manager.create(spec(3, skip_render=True, skip_evaluation=True))).id)
    for text in ("before:2", "from:-1", "from:x", "from:1:2", "from", "from:"):
        with pytest.raises(InvalidArgument) as raised:
            await manager.list_items(job.id, page_token=token(text))
        assert raised.value.details == "page_token: not a token from a previous page of this listing", text
    items, next_token = await manager.list_items(job.id, page_size=2, page_token=token("from:0"))
    assert [i.index for i in items] == [0, 1] and next_token == token("from:2")
    with pytest.raises(InvalidArgument, match="page_token"):
        await manager.list_jobs(page_token=next_token)


async def pages(manager, job_id: str, size: int, states=()) -> list[tuple[list[int], bool]]:
    """Each page's item indexes, and whether it came with a next token."""
    result, page_token = [], ""
    while True:
        items, page_token = await manager.list_items(job_id, size, page_token, states)
        result.append(([i.index for i in items], bool(page_token)))
        if not page_token:
            return result


async def test_pages_of_stored_items_end_exactly_at_the_last_match(make_manager):
    manager = await make_manager()
    job = await finished(manager, (await manager.create(spec(4, skip_render=True, skip_evaluation=True))).id)
    for states in ((), [SUCCEEDED]):
        assert await pages(manager, job.id, 2, states) == [([0, 1], True), ([2, 3], False)]
        assert await pages(manager, job.id, 3, states) == [([0, 1, 2], True), ([3], False)]
        assert await pages(manager, job.id, 4, states) == [([0, 1, 2, 3], False)]


async def test_a_filtered_page_that_fills_up_still_looks_ahead_for_the_next_match(make_manager):
    """Item 0 fails: with pages of 2, the first read (items 0-2) fills the page with 1 and 2, and item 3 must
    still be found to give a next token."""
    stages = Stages(LocalStory(faults={0: [InvalidArgument("refused")]}), LocalRender(), LocalEvaluate())
    manager = await make_manager(stages)
    job = await finished(manager, (await manager.create(spec(4, skip_render=True, skip_evaluation=True))).id)
    assert [i.state for i in job.items] == [FAILED, SUCCEEDED, SUCCEEDED, SUCCEEDED]
    ended = [SUCCEEDED, pipeline_pb2.ITEM_STATE_CANCELLED]  # with the state of unstarted items: read in order
    assert await pages(manager, job.id, 2, ended) == [([1, 2], True), ([3], False)]


async def test_items_not_started_yet_are_listed_with_the_seeds_they_will_run_with(make_manager):
    stages = held_stories()
    manager = await make_manager(stages)
    job = await manager.create(spec(20, skip_render=True, skip_evaluation=True))
    pending, _ = await manager.list_items(job.id, states=[pipeline_pb2.ITEM_STATE_PENDING])
    stages.story.sim.release()
    ran = {item.index: item for item in (await finished(manager, job.id)).items}
    assert pending[-1].index == 19, "the last item cannot have started while every story is held"
    for item in pending:
        assert (item.story_seed, item.image_seed) == (ran[item.index].story_seed, ran[item.index].image_seed)


# Cancelling jobs.


async def test_cancel_returns_the_items_up_to_the_get_limit_and_leaves_them_out_beyond(make_manager):
    manager = await make_manager(held_stories(), max_items_per_get=2)
    at_limit, beyond = await manager.create(spec(2)), await manager.create(spec(3))
    cancelled = await manager.cancel(at_limit.id)
    assert [i.state for i in cancelled.items] == [pipeline_pb2.ITEM_STATE_CANCELLED] * 2
    cancelled = await manager.cancel(beyond.id)
    assert (cancelled.state, len(cancelled.items)) == (pipeline_pb2.JOB_STATE_CANCELLED, 0)


async def test_cancel_of_a_job_that_is_not_running_here_asks_to_try_again(make_manager):
    """A job left unfinished by a stopped orchestrator runs again once it is resumed."""
    manager = await make_manager(held_stories())
    job = await manager.create(spec(1))
    await manager.stop()
    with pytest.raises(Unavailable) as raised:
        await manager.cancel(job.id)
    assert raised.value.details == f"job {job.id} is being resumed; try again in a moment"


class HeldEnd:
    """Holds the store's commit of a job's end until `release`: the job has its final state in memory
    and is still running here meanwhile."""

    def __init__(self, manager):
        self.arrived, self._released = asyncio.Event(), asyncio.Event()
        self._commit = manager._store.commit

    async def __call__(self, change) -> None:
        if change.cancel_unended:
            self.arrived.set()
            await self._released.wait()
        await self._commit(change)

    def release(self) -> None:
        self._released.set()


async def test_a_cancel_while_an_earlier_cancel_is_being_stored_also_returns_the_cancelled_job(
    make_manager, monkeypatch
):
    manager = await make_manager(held_stories())
    monkeypatch.setattr(manager._store, "commit", held := HeldEnd(manager))
    job = await manager.create(spec(2))
    first = asyncio.ensure_future(manager.cancel(job.id))
    await asyncio.wait_for(held.arrived.wait(), 10)
    second = asyncio.ensure_future(manager.cancel(job.id))  # runs before the end is released
    held.release()
    both = await asyncio.wait_for(asyncio.gather(first, second), 10)
    assert [j.state for j in both] == [pipeline_pb2.JOB_STATE_CANCELLED] * 2
    assert both[0] == both[1]


async def test_a_cancel_while_the_jobs_own_end_is_being_stored_says_it_has_ended(make_manager, monkeypatch):
    manager = await make_manager()
    monkeypatch.setattr(manager._store, "commit", held := HeldEnd(manager))
    job = await manager.create(spec(1, skip_render=True, skip_evaluation=True))
    await asyncio.wait_for(held.arrived.wait(), 10)
    cancelling = asyncio.ensure_future(manager.cancel(job.id))
    held.release()
    with pytest.raises(FailedPrecondition) as raised:
        await asyncio.wait_for(cancelling, 10)
    assert raised.value.details == f"job_id: job {job.id} has already ended (JOB_STATE_SUCCEEDED)"


class HeldGallery:
    """A gallery writer that waits for `released`: the job is ending, but not yet in its final state."""

    def __init__(self):
        self.arrived, self.released = threading.Event(), threading.Event()

    def __call__(self, directory: Path, job: pipeline_pb2.Job, items) -> Path:
        self.arrived.set()
        self.released.wait(10)
        return directory / "gallery.html"


async def test_a_cancel_that_meets_the_jobs_own_end_says_how_it_ended(make_manager):
    gallery = HeldGallery()
    manager = await make_manager(gallery=gallery)
    job = await manager.create(spec(1, skip_render=True, skip_evaluation=True))
    try:
        assert await asyncio.to_thread(gallery.arrived.wait, 10)
        cancelling = asyncio.ensure_future(manager.cancel(job.id))  # its first step runs before the end
    finally:
        gallery.released.set()
    with pytest.raises(FailedPrecondition) as raised:
        await asyncio.wait_for(cancelling, 10)
    assert raised.value.details == f"job_id: job {job.id} has already ended (JOB_STATE_SUCCEEDED)"
