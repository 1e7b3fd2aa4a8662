"""Jobs belong to the identity that created them: without admin a caller sees and acts on its own jobs
only, and cannot tell another identity's job from one that does not exist. Transport-free, over SQLite."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from storytelling.orchestrator.store import SCHEMA_VERSION, Store
from storytelling.runtime.auth import Principal, Scope
from storytelling.runtime.errors import FailedPrecondition, NotFound, PermissionDenied
from storytelling.v1 import pipeline_pb2
from tests.orchestrator.conftest import finished, spec

ALICE = Principal("alice", frozenset({Scope.READ, Scope.WRITE}))
BOB = Principal("bob", frozenset({Scope.READ, Scope.WRITE}))
ADMIN = Principal("ops", frozenset(Scope))


async def test_a_job_records_its_owner_and_only_the_owner_or_an_admin_sees_it(make_manager):
    manager = await make_manager()
    job = await manager.create(spec(1), caller=ALICE)
    assert job.owner == "alice"
    assert (await manager.get(job.id, ALICE)).owner == "alice"
    assert (await manager.get(job.id, ADMIN)).id == job.id
    await finished(manager, job.id)

    with pytest.raises(PermissionDenied) as theirs:
        await manager.get(job.id, BOB)
    with pytest.raises(PermissionDenied) as missing:
        await manager.get("0" * 32, BOB)
    # The same answer for another identity's job and for no job at all.
    assert theirs.value.message.replace(job.id, "ID") == missing.value.message.replace("0" * 32, "ID")
    assert theirs.value.field == missing.value.field == "job_id"
    with pytest.raises(NotFound):
        await manager.get("0" * 32, ADMIN)  # an admin sees everything, so it may know what does not exist
    with pytest.raises(PermissionDenied):
        [event async for event in manager.watch(job.id, 0, BOB)]


async def test_cancel_and_list_are_limited_to_the_callers_own_jobs(make_manager):
    from tests.orchestrator.conftest import local_stages

    manager = await make_manager(local_stages(story=30.0))  # both jobs run until they are cancelled
    mine = await manager.create(spec(2), caller=ALICE)
    theirs = await manager.create(spec(2), caller=BOB)
    with pytest.raises(PermissionDenied) as denied:
        await manager.cancel(theirs.id, ALICE)
    assert denied.value.details == f"job_id: no job '{theirs.id}' that identity 'alice' may access"
    assert (await manager.cancel(mine.id, ALICE)).state == pipeline_pb2.JOB_STATE_CANCELLED

    async def listed(caller: Principal) -> set[str]:
        return {job.id for job in (await manager.list_jobs(caller=caller))[0]}

    assert await listed(ALICE) == {mine.id}
    assert await listed(BOB) == {theirs.id}
    assert await listed(ADMIN) == {mine.id, theirs.id}
    await manager.cancel(theirs.id, ADMIN)


async def test_cancel_of_an_ended_job_says_it_ended_only_to_those_who_may_see_it(make_manager):
    manager = await make_manager()
    job = await finished(manager, (await manager.create(spec(1), caller=ALICE)).id)
    with pytest.raises(PermissionDenied) as denied:
        await manager.cancel(job.id, BOB)
    assert denied.value.details == f"job_id: no job '{job.id}' that identity 'bob' may access"
    for caller in (ALICE, ADMIN):
        with pytest.raises(FailedPrecondition) as ended:
            await manager.cancel(job.id, caller)
        assert ended.value.details == f"job_id: job {job.id} has already ended (JOB_STATE_SUCCEEDED)"
    with pytest.raises(PermissionDenied) as missing:
        await manager.cancel("0" * 32, BOB)
    assert missing.value.details == f"job_id: no job '{'0' * 32}' that identity 'bob' may access"
    with pytest.raises(NotFound) as unknown:
        await manager.cancel("0" * 32, ADMIN)
    assert unknown.value.details == f"job_id: no job '{'0' * 32}'"


async def test_idempotency_keys_belong_to_their_identity(make_manager):
    manager = await make_manager()
    first = await manager.create(spec(1, seed=1), "nightly", caller=ALICE)
    other = await manager.create(spec(1, seed=2), "nightly", caller=BOB)  # no collision, no leak
    assert other.id != first.id and other.owner == "bob"
    assert (await manager.create(spec(1, seed=1), "nightly", caller=ALICE)).id == first.id
    for job in (first, other):
        await finished(manager, job.id)


def user_version(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("PRAGMA user_version").fetchone()[0]


async def test_a_version_0_database_is_migrated_and_keeps_its_jobs(tmp_path: Path):
    path = tmp_path / "orchestrator.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE jobs (
            position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, request_id TEXT UNIQUE,
            state INTEGER NOT NULL, last_sequence INTEGER NOT NULL DEFAULT 0, job BLOB NOT NULL);
        """
    )
    job = pipeline_pb2.Job(id="a" * 32, state=pipeline_pb2.JOB_STATE_SUCCEEDED)
    old.execute(
        "INSERT INTO jobs (position, id, request_id, state, job) VALUES (7, ?, 'key', ?, ?)",
        (job.id, job.state, job.SerializeToString()),
    )
    old.commit()
    old.close()

    store = Store(path)
    assert user_version(path) == SCHEMA_VERSION
    assert await store.job_id_for_request("", "key") == job.id  # the anonymous caller's, as before
    assert await store.job_id_for_request("alice", "key") is None
    assert [(position, j.id) for position, j in await store.list_jobs((), None, 10)] == [(7, job.id)]
    assert await store.list_jobs((), None, 10, owner="alice") == []
    store.close()
    Store(path).close()  # opening a migrated database again changes nothing


async def test_a_version_1_database_with_its_event_log_is_migrated(tmp_path: Path):
    """Version 1 kept an event per change and a row per item, pending ones included: the migrated
    database keeps the owners, the jobs' last sequences and the items that started, and no events."""
    path = tmp_path / "orchestrator.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """
        CREATE TABLE jobs (
            position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
            owner TEXT NOT NULL DEFAULT '', request_id TEXT, state INTEGER NOT NULL,
            last_sequence INTEGER NOT NULL DEFAULT 0, job BLOB NOT NULL, UNIQUE (owner, request_id));
        CREATE TABLE items (job_id TEXT NOT NULL, position INTEGER NOT NULL, state INTEGER NOT NULL,
            item BLOB NOT NULL, PRIMARY KEY (job_id, position)) WITHOUT ROWID;
        CREATE TABLE events (job_id TEXT NOT NULL, sequence INTEGER NOT NULL, event BLOB NOT NULL,
            PRIMARY KEY (job_id, sequence)) WITHOUT ROWID;
        PRAGMA user_version = 1;
        """
    )
    job = pipeline_pb2.Job(id="b" * 32, state=pipeline_pb2.JOB_STATE_RUNNING, owner="alice")
    job.spec.items = 3
    old.execute(
        "INSERT INTO jobs (id, owner, request_id, state, last_sequence, job) VALUES (?, 'alice', 'k', ?, 9, ?)",
        (job.id, job.state, job.SerializeToString()),
    )
    states = [
        pipeline_pb2.ITEM_STATE_SUCCEEDED,
        pipeline_pb2.ITEM_STATE_RUNNING,
        pipeline_pb2.ITEM_STATE_PENDING,
    ]
    for index, state in enumerate(states):
        item = pipeline_pb2.Item(index=index, state=state)
        old.execute("INSERT INTO items VALUES (?, ?, ?, ?)", (job.id, index, state, item.SerializeToString()))
        old.execute("INSERT INTO events VALUES (?, ?, x'')", (job.id, index + 1))
    old.commit()
    old.close()

    store = Store(path)
    assert user_version(path) == SCHEMA_VERSION
    assert await store.job_id_for_request("alice", "k") == job.id
    (unfinished, sequence), *_ = await store.unfinished_jobs()
    assert (unfinished.id, unfinished.owner, sequence) == (job.id, "alice", 9)
    items = await store.items_in_range(job.id, 0, 3)
    assert [(i.index, i.state) for i in items] == list(enumerate(states[:2]))  # pending: no row
    assert [s for s, _ in await store.items_changed(job.id, 0, 9, 10)] == [9, 9]
    store.close()
    with sqlite3.connect(path) as db:
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "events" not in tables


async def test_a_symlink_planted_in_an_unfinished_job_is_refused_on_resume(make_manager, tmp_path: Path):
    """An artifact replaced by a link to a file outside the data directory, while the orchestrator was
    down: the resumed job fails naming the link, and nothing from the linked file reaches the job."""
    import asyncio

    from tests.orchestrator.conftest import local_stages

    first = await make_manager(stages=local_stages(render=30.0))  # stories are written, renders hang
    job = await first.create(spec(1), caller=ALICE)
    story = tmp_path / "jobs" / job.id / "items" / "00000" / "story.json"
    for _ in range(200):
        if story.exists():
            break
        await asyncio.sleep(0.02)
    await first.stop()
    secret = tmp_path.parent / f"{tmp_path.name}-outside.json"
    secret.write_text('{"id": "stolen", "text": "SECRET FROM OUTSIDE THE DATA DIRECTORY"}')
    story.unlink()
    story.symlink_to(secret)

    second = await make_manager()
    done = await finished(second, job.id)
    assert done.state == pipeline_pb2.JOB_STATE_FAILED
    assert "symbolic link" in done.error
    assert "SECRET" not in str(done) and "stolen" not in str(done)
    secret.unlink()


async def test_an_item_directory_swapped_for_a_link_mid_job_fails_that_job_only(make_manager, tmp_path: Path):
    """The store's writer refuses to write through the link: the job fails naming it, nothing is written
    outside, and the writer goes on storing another job's changes."""
    import asyncio
    import shutil

    from storytelling.orchestrator.stages import Stages
    from tests.orchestrator.stages import LocalEvaluate, LocalRender, LocalStory

    render = LocalRender(hold_after=0)  # every render waits: the stories are written, then we swap
    manager = await make_manager(Stages(LocalStory(), render, LocalEvaluate()))
    job = await manager.create(spec(2), caller=ALICE)
    item = tmp_path / "jobs" / job.id / "items" / "00000"
    async with asyncio.timeout(10):  # the story is written, by the store's writer, after the render began
        while render.sim.holding < 2 or not (item / "story.json").exists():
            await asyncio.sleep(0.01)
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    shutil.rmtree(item)
    item.symlink_to(outside, target_is_directory=True)
    render.sim.release()

    done = await finished(manager, job.id)
    assert done.state == pipeline_pb2.JOB_STATE_FAILED
    assert "leads out of" in done.error and "00000" in done.error
    assert list(outside.iterdir()) == []
    other = await finished(manager, (await manager.create(spec(2), caller=BOB)).id)
    assert other.state == pipeline_pb2.JOB_STATE_SUCCEEDED and other.items_succeeded == 2
    outside.rmdir()
