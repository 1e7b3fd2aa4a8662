"""The store on its own: a real SQLite database in tmp_path, its real writer, reader and artifact threads.

Changes are made as the orchestrator's journal makes them (a Change per loop iteration, `submit` with
on_commit/on_error, `commit` where it waits). Every wait is bounded, so that a broken writer fails a test
instead of hanging it. Where the writer has to be held in the middle of a commit, an artifact is written
under a regular file (a real ENOTDIR, an OSError the writer retries) and the writer's retry sleep is
replaced (`RetrySleeps`): it records the delays and can hold the writer there until the test goes on.
"""

import asyncio
import ctypes
import os
import sqlite3
import threading
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import TypeVar

import pytest

from storytelling.api.layout import ArtifactWrite, UnsafePath
from storytelling.orchestrator import store as store_module
from storytelling.orchestrator.store import Change, Store
from storytelling.v1 import pipeline_pb2

T = TypeVar("T")

QUEUED, RUNNING = pipeline_pb2.JOB_STATE_QUEUED, pipeline_pb2.JOB_STATE_RUNNING
SUCCEEDED, FAILED, CANCELLED = (
    pipeline_pb2.JOB_STATE_SUCCEEDED,
    pipeline_pb2.JOB_STATE_FAILED,
    pipeline_pb2.JOB_STATE_CANCELLED,
)
ITEM_PENDING, ITEM_RUNNING, ITEM_WAITING = (
    pipeline_pb2.ITEM_STATE_PENDING,
    pipeline_pb2.ITEM_STATE_RUNNING,
    pipeline_pb2.ITEM_STATE_WAITING,
)
ITEM_SUCCEEDED, ITEM_FAILED, ITEM_CANCELLED = (
    pipeline_pb2.ITEM_STATE_SUCCEEDED,
    pipeline_pb2.ITEM_STATE_FAILED,
    pipeline_pb2.ITEM_STATE_CANCELLED,
)
STORE_LOGGER = "storytelling.orchestrator.store"


def job(job_id: str, state: int = RUNNING, owner: str = "") -> pipeline_pb2.Job:
    return pipeline_pb2.Job(id=job_id, state=state, owner=owner, spec=pipeline_pb2.JobSpec(items=8, seed=7))


def item(index: int, state: int) -> pipeline_pb2.Item:
    return pipeline_pb2.Item(index=index, state=state, stage=pipeline_pb2.STAGE_STORY, story_seed=100 + index)


async def settled(awaitable: Awaitable[T], seconds: float = 5) -> T:
    """`awaitable`, failing after `seconds` instead of waiting for a writer that never commits."""
    return await asyncio.wait_for(awaitable, seconds)


def submitted(store: Store, change: Change) -> asyncio.Future[list]:
    """Submits `change` as the journal does; the future lists what the store reported for it, once it
    reported something: "committed" (on_commit) or the error (on_error)."""
    reported: list = []
    done = asyncio.get_running_loop().create_future()

    def report(outcome: object) -> None:
        reported.append(outcome)
        if not done.done():
            done.set_result(reported)

    change.on_commit = lambda: report("committed")
    change.on_error = report
    store.submit(change)
    return done


def close_within(store: Store, seconds: float = 5) -> None:
    """store.close(), failing instead of hanging where a broken writer never ends; raises what it raised."""
    raised: list[Exception] = []

    def close() -> None:
        try:
            store.close()
        except Exception as error:  # noqa: BLE001 (raised again below, in the test)
            raised.append(error)

    closing = threading.Thread(target=close, daemon=True)
    closing.start()
    closing.join(seconds)
    assert not closing.is_alive(), "close() did not return"
    if raised:
        raise raised[0]


def store_messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == STORE_LOGGER]


def blocked(directory: Path, name: str = "story.json", data: bytes = b"story") -> ArtifactWrite:
    """An artifact under `directory`, which the test makes a regular file: writing it fails (ENOTDIR)
    until the file is removed."""
    directory.write_text("a file where a directory belongs")
    return ArtifactWrite(str(directory / name), data)


def tables(path: Path) -> tuple[set[str], set[str], int, str]:
    """(tables, indexes of our own, user_version, journal mode) of the database file."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT type, name FROM sqlite_master").fetchall()
        (version,) = db.execute("PRAGMA user_version").fetchone()
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    finally:
        db.close()
    indexes = {name for kind, name in rows if kind == "index" and not name.startswith("sqlite_")}
    return {name for kind, name in rows if kind == "table"}, indexes, version, mode


class RetrySleeps:
    """Stands in for the writer's sleep between attempts at a failed commit: records each delay, runs
    `then(attempts so far)`, and with `hold` keeps the writer there until the test calls `wake()`."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hold = True
        self.then: Callable[[int], object] | None = None
        self._asleep = threading.Semaphore(0)
        self._wake = threading.Semaphore(0)

    def sleep(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.then is not None:
            self.then(len(self.delays))
        if self.hold:
            self._asleep.release()
            self._wake.acquire(timeout=10)

    async def asleep(self) -> None:
        """Returns once the writer sleeps after a failed attempt (it holds its group there)."""
        assert await asyncio.to_thread(self._asleep.acquire, True, 5), "the writer never retried"

    def wake(self) -> None:
        self._wake.release()


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> RetrySleeps:
    fake = RetrySleeps()
    monkeypatch.setattr(store_module, "time", SimpleNamespace(sleep=fake.sleep))
    return fake


@pytest.fixture
def open_store(tmp_path: Path) -> Iterator[Callable[..., Store]]:
    """Opens stores (by default tmp_path/orchestrator.sqlite3); closes them all at the end."""
    opened: list[Store] = []

    def open_(path: Path | None = None, **options) -> Store:
        store = Store(path or tmp_path / "orchestrator.sqlite3", **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        close_within(store)


@pytest.fixture
def store(open_store: Callable[..., Store]) -> Store:
    return open_store()


# Writing and reading back.


async def test_a_job_and_its_items_read_back_as_they_were_committed(store: Store):
    published: list[int] = []
    await settled(
        store.commit(
            Change(job("j1", QUEUED, "alice"), 1, request_id="r1", on_commit=lambda: published.append(1))
        )
    )
    assert await store.job("j1") == (job("j1", QUEUED, "alice"), 1)

    items = [(2, item(0, ITEM_RUNNING)), (3, item(1, ITEM_SUCCEEDED))]
    await settled(
        store.commit(
            Change(job("j1", RUNNING, "alice"), 3, items=items, on_commit=lambda: published.append(3))
        )
    )

    assert await store.job("j1") == (job("j1", RUNNING, "alice"), 3)
    assert await store.job("j2") is None
    assert await store.items_in_range("j1", 0, 8) == [item(0, ITEM_RUNNING), item(1, ITEM_SUCCEEDED)]
    assert await store.size() == (1, 2)
    assert published == [1, 3]
    # One transaction each: the job row; then the job row and two item rows.
    assert (store.commits, store.rows_written) == (2, 4)

    # A later change replaces an item's row.
    failed = pipeline_pb2.Item(
        index=0, state=ITEM_FAILED, stage=pipeline_pb2.STAGE_RENDER, error="render: boom"
    )
    await settled(store.commit(Change(job("j1", RUNNING, "alice"), 5, items=[(5, failed)])))
    assert await store.items_changed("j1", 0, 5, 10) == [(3, item(1, ITEM_SUCCEEDED)), (5, failed)]
    assert await store.size() == (1, 2)


async def test_one_loop_iteration_is_one_transaction_keeping_the_latest_version_of_each_row(store: Store):
    await settled(store.commit(Change(job("j1", QUEUED), 1, request_id="")))
    first = submitted(store, Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))]))
    second = submitted(store, Change(job("j1"), 3, items=[(3, item(1, ITEM_RUNNING))]))
    third = submitted(store, Change(job("j1", SUCCEEDED), 4, items=[(4, item(0, ITEM_SUCCEEDED))]))
    order: list[int] = []
    for number, change in enumerate((first, second, third), start=1):
        change.add_done_callback(lambda _, number=number: order.append(number))

    assert await settled(asyncio.gather(first, second, third)) == [["committed"]] * 3
    assert order == [1, 2, 3]  # published in the order they were made
    # Item 0 is written once, in its latest version; the job row once.
    assert (store.commits, store.rows_written) == (2, 1 + 3)
    assert await store.items_changed("j1", 0, 4, 10) == [
        (3, item(1, ITEM_RUNNING)),
        (4, item(0, ITEM_SUCCEEDED)),
    ]
    assert await store.job("j1") == (job("j1", SUCCEEDED), 4)


async def test_flush_returns_once_everything_queued_before_it_is_committed(store: Store):
    published: list[int] = []
    await settled(store.flush())  # nothing queued
    store.submit(Change(job("j1", QUEUED), 1, request_id="", on_commit=lambda: published.append(1)))
    await asyncio.sleep(0)  # handed over
    store.submit(
        Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))], on_commit=lambda: published.append(2))
    )

    await settled(store.flush())
    assert published == [1, 2]
    assert await store.job("j1") == (job("j1"), 2)


async def test_changes_handed_over_while_a_commit_is_retried_go_into_the_next_transaction_together(
    store: Store, tmp_path: Path, sleeps: RetrySleeps
):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    obstacle = tmp_path / "obstacle"
    stuck = submitted(
        store, Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))], artifacts=[[blocked(obstacle)]])
    )
    await sleeps.asleep()  # the writer holds the change above and retries it
    second = submitted(store, Change(job("j1"), 3, items=[(3, item(1, ITEM_RUNNING))]))
    await asyncio.sleep(0)  # handed over
    third = submitted(store, Change(job("j1"), 4, items=[(4, item(2, ITEM_RUNNING))]))
    await asyncio.sleep(0)  # handed over on its own
    assert not stuck.done()

    obstacle.unlink()
    sleeps.wake()
    assert await settled(asyncio.gather(stuck, second, third)) == [["committed"]] * 3
    assert (obstacle / "story.json").read_bytes() == b"story"
    assert store.commits == 3  # the job; the retried change; the two handed over meanwhile, together
    assert await store.items_changed("j1", 0, 4, 10) == [
        (2, item(0, ITEM_RUNNING)),
        (3, item(1, ITEM_RUNNING)),
        (4, item(2, ITEM_RUNNING)),
    ]


async def test_the_end_of_a_job_cancels_the_rows_of_its_items_that_had_not_ended(store: Store):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    await settled(store.commit(Change(job("j2"), 1, request_id="")))
    await settled(store.commit(Change(job("j3"), 1, request_id="")))
    items = [
        (2, item(0, ITEM_SUCCEEDED)),
        (3, item(1, ITEM_FAILED)),
        (4, item(2, ITEM_RUNNING)),
        (5, item(3, ITEM_WAITING)),
    ]
    await settled(store.commit(Change(job("j1"), 5, items=items)))
    await settled(store.commit(Change(job("j2"), 2, items=[(2, item(0, ITEM_RUNNING))])))
    await settled(store.commit(Change(job("j3"), 2, items=[(2, item(0, ITEM_RUNNING))])))
    rows_before = store.rows_written

    # Two jobs end in one loop iteration. The last change of each carries its last item changes:
    # j1's item 5 is recorded, then cancelled.
    ends = [
        Change(
            job("j1", CANCELLED),
            9,
            items=[(7, item(4, ITEM_SUCCEEDED)), (8, item(5, ITEM_RUNNING))],
            cancel_unended=True,
        ),
        Change(job("j2", SUCCEEDED), 4, items=[(3, item(1, ITEM_SUCCEEDED))], cancel_unended=True),
    ]
    assert await settled(asyncio.gather(*(submitted(store, end) for end in ends))) == [["committed"]] * 2

    assert await store.items_changed("j1", 0, 9, 10) == [
        (2, item(0, ITEM_SUCCEEDED)),
        (3, item(1, ITEM_FAILED)),
        (7, item(4, ITEM_SUCCEEDED)),
        (9, item(2, ITEM_CANCELLED)),  # the state column wins over the RUNNING inside the item
        (9, item(3, ITEM_CANCELLED)),
        (9, item(5, ITEM_CANCELLED)),
    ]
    assert await store.items_changed("j2", 0, 4, 10) == [
        (3, item(1, ITEM_SUCCEEDED)),
        (4, item(0, ITEM_CANCELLED)),
    ]
    assert await store.items_in_range("j3", 0, 8) == [item(0, ITEM_RUNNING)]  # a job that goes on
    assert await store.job("j1") == (job("j1", CANCELLED), 9)
    assert await store.job("j2") == (job("j2", SUCCEEDED), 4)
    # j1: two item rows recorded, three cancelled; j2: one recorded, one cancelled; the two job rows.
    assert store.rows_written - rows_before == 9


async def test_an_idempotency_key_belongs_to_the_identity_that_used_it(store: Store):
    await settled(store.commit(Change(job("a1", QUEUED, "alice"), 1, request_id="key")))
    await settled(store.commit(Change(job("b1", QUEUED, "bob"), 1, request_id="key")))
    await settled(store.commit(Change(job("a2", QUEUED, "alice"), 1, request_id="")))
    await settled(store.commit(Change(job("a3", QUEUED, "alice"), 1, request_id="")))  # no key: no conflict

    assert await store.job_id_for_request("alice", "key") == "a1"
    assert await store.job_id_for_request("bob", "key") == "b1"
    assert await store.job_id_for_request("carol", "key") is None
    assert await store.job_id_for_request("alice", "other") is None
    assert await store.job_id_for_request("alice", "") is None  # an empty key is no key
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE constraint failed: jobs.owner, jobs.request_id"):
        await settled(store.commit(Change(job("a4", QUEUED, "alice"), 1, request_id="key")))
    assert await store.size() == (4, 0)


async def test_a_group_that_breaks_a_constraint_is_dropped_and_the_writer_goes_on(
    store: Store, caplog: pytest.LogCaptureFixture
):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    # Both in one transaction: the second creates j1 again, so neither can ever commit.
    progress = submitted(store, Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))]))
    again = submitted(store, Change(job("j1", QUEUED), 1, request_id="again"))

    [[progress_error], [again_error]] = await settled(asyncio.gather(progress, again))
    assert isinstance(progress_error, sqlite3.IntegrityError) and progress_error is again_error
    assert str(progress_error) == "UNIQUE constraint failed: jobs.id"
    assert await store.items_in_range("j1", 0, 8) == []  # rolled back with the group
    with pytest.raises(sqlite3.IntegrityError):
        await settled(store.commit(Change(job("j1", QUEUED), 1, request_id="again")))

    await settled(store.commit(Change(job("j1"), 3, items=[(3, item(1, ITEM_RUNNING))])))
    assert await store.items_in_range("j1", 0, 8) == [item(1, ITEM_RUNNING)]
    assert await store.job("j1") == (job("j1"), 3)
    assert store_messages(caplog) == [
        "dropped 2 change(s) that cannot be committed",
        "dropped 1 change(s) that cannot be committed",
    ]


async def test_a_commit_whose_waiter_was_cancelled_is_still_committed_and_published(store: Store):
    published: list[str] = []
    waiter = asyncio.create_task(
        store.commit(Change(job("j1"), 1, request_id="", on_commit=lambda: published.append("j1")))
    )
    await asyncio.sleep(0)  # the change is queued
    waiter.cancel()
    await settled(store.commit(Change(job("j2"), 1, request_id="", on_commit=lambda: published.append("j2"))))

    assert published == ["j1", "j2"]
    assert waiter.cancelled()
    assert await store.job("j1") == (job("j1"), 1)


# Artifacts.


async def test_the_artifacts_of_a_change_are_on_disk_when_it_is_committed(open_store, tmp_path: Path):
    store = open_store(artifact_threads=2)
    directory = tmp_path / "jobs" / "j1"
    groups = [
        [
            ArtifactWrite(f"{directory}/{index}/image.png", b"png %d" % index, root=str(directory)),
            ArtifactWrite(f"{directory}/{index}/image.json", b"{}", root=str(directory)),
        ]
        for index in range(3)
    ]
    on_disk: dict[str, bytes] = {}

    def read_them() -> None:
        for path in sorted(directory.rglob("*")):
            if path.is_file():
                on_disk[str(path.relative_to(directory))] = path.read_bytes()

    await settled(store.commit(Change(job("j1"), 1, request_id="", artifacts=groups[:1])))
    items = [(2, item(1, ITEM_SUCCEEDED)), (2, item(2, ITEM_SUCCEEDED))]
    await settled(store.commit(Change(job("j1"), 2, items=items, artifacts=groups[1:], on_commit=read_them)))

    assert on_disk == {
        "0/image.json": b"{}",
        "0/image.png": b"png 0",
        "1/image.json": b"{}",
        "1/image.png": b"png 1",
        "2/image.json": b"{}",
        "2/image.png": b"png 2",
    }


async def test_a_failed_write_holds_back_the_groups_after_it_in_its_batch_of_artifacts(
    store: Store, tmp_path: Path, sleeps: RetrySleeps
):
    """Groups are dealt round robin into `artifact_threads` batches (8 by default), each written in order
    by one thread: when a write fails, the groups after it in its batch are not written until the retry."""
    obstacle, artifacts = tmp_path / "obstacle", tmp_path / "artifacts"
    groups = [[blocked(obstacle)]] + [[ArtifactWrite(f"{artifacts}/{n}.png", b"%d" % n)] for n in range(1, 9)]
    done = submitted(store, Change(job("j1"), 1, request_id="", artifacts=groups))
    await sleeps.asleep()
    # Batch 0 holds groups 0 and 8; batches 1 to 7 one group each.
    assert sorted(path.name for path in artifacts.iterdir()) == [f"{n}.png" for n in range(1, 8)]

    obstacle.unlink()
    sleeps.wake()
    assert await settled(done) == ["committed"]
    assert sorted(path.name for path in artifacts.iterdir()) == [f"{n}.png" for n in range(1, 9)]
    assert (artifacts / "8.png").read_bytes() == b"8"


async def test_an_artifact_that_leads_out_of_its_job_directory_fails_only_its_own_change(
    open_store, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    store = open_store(artifact_threads=2)
    jobs = tmp_path / "jobs"
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    await settled(store.commit(Change(job("j2"), 1, request_id="")))
    escape = ArtifactWrite(f"{jobs}/j1/../../outside/story.json", b"escape", root=f"{jobs}/j1")
    story = ArtifactWrite(f"{jobs}/j2/0/story.json", b"story", root=f"{jobs}/j2")
    image = ArtifactWrite(f"{jobs}/j2/1/image.png", b"png", root=f"{jobs}/j2")

    refused = submitted(
        store, Change(job("j1"), 2, items=[(2, item(0, ITEM_SUCCEEDED))], artifacts=[[escape]])
    )
    written = submitted(
        store, Change(job("j2"), 2, items=[(2, item(0, ITEM_SUCCEEDED))], artifacts=[[story], [image]])
    )

    [error] = await settled(refused)
    assert isinstance(error, UnsafePath)
    assert str(error) == f"{jobs}/j1/../../outside: '..' in an artifact path"
    assert await settled(written) == ["committed"]
    assert store.commits == 3  # both in one transaction, which holds j2's change only
    assert not (tmp_path / "outside").exists()
    assert (jobs / "j2" / "0" / "story.json").read_bytes() == b"story"
    assert (jobs / "j2" / "1" / "image.png").read_bytes() == b"png"
    assert await store.job("j1") == (job("j1"), 1)
    assert await store.items_in_range("j1", 0, 8) == []
    assert await store.items_in_range("j2", 0, 8) == [item(0, ITEM_SUCCEEDED)]
    assert store_messages(caplog) == [
        f"job j1: an artifact is refused: {jobs}/j1/../../outside: '..' in an artifact path"
    ]


async def test_a_commit_that_fails_with_an_io_error_is_retried_with_a_doubling_delay(
    store: Store, tmp_path: Path, sleeps: RetrySleeps, caplog: pytest.LogCaptureFixture
):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    obstacle = tmp_path / "obstacle"
    write = blocked(obstacle)
    sleeps.hold = False
    sleeps.then = lambda attempts: obstacle.unlink() if attempts == 9 else None

    await settled(store.commit(Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))], artifacts=[[write]])))

    assert sleeps.delays == pytest.approx([0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0])
    assert (obstacle / "story.json").read_bytes() == b"story"
    assert await store.items_in_range("j1", 0, 8) == [item(0, ITEM_RUNNING)]
    failure = f"[Errno 20] Not a directory: '{obstacle / 'story.json'}'"
    assert store_messages(caplog) == [f"could not commit 1 change(s), retrying: {failure}"] * 9


# Back-pressure.


async def test_room_waits_while_more_item_changes_than_max_backlog_wait_until_half_of_them_are_committed(
    open_store, tmp_path: Path, sleeps: RetrySleeps
):
    store = open_store(max_backlog=4)
    await store.room()  # nothing submitted yet
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    a = submitted(
        store, Change(job("j1"), 2, items=[(2, item(0, ITEM_RUNNING))], artifacts=[[blocked(first)]])
    )
    await sleeps.asleep()  # the writer is stuck on a
    await settled(store.room(), 1)  # 1 item change waits for the writer

    # b, c and d are handed over while a is stuck: the writer's next transaction takes them together.
    b = submitted(
        store, Change(job("j1"), 3, items=[(3, item(1, ITEM_RUNNING))], artifacts=[[blocked(second)]])
    )
    await asyncio.sleep(0)
    c = submitted(store, Change(job("j1"), 4, items=[(4, item(2, ITEM_RUNNING)), (4, item(3, ITEM_RUNNING))]))
    await settled(store.room(), 1)  # 4 wait: not more than max_backlog
    d = submitted(store, Change(job("j1"), 5))  # a change without items counts as one
    waiting = asyncio.ensure_future(store.room())
    await asyncio.sleep(0.1)
    assert not waiting.done()  # 5 wait

    first.unlink()
    sleeps.wake()
    assert await settled(a) == ["committed"]
    await sleeps.asleep()  # b, c and d are stuck now
    await asyncio.sleep(0.05)
    assert not waiting.done()  # 4 wait: fewer than 5, but more than half of max_backlog

    e = submitted(
        store,
        Change(
            job("j1"),
            6,
            items=[(6, item(4, ITEM_RUNNING)), (6, item(5, ITEM_RUNNING))],
            artifacts=[[blocked(third)]],
        ),
    )
    second.unlink()
    sleeps.wake()
    assert await settled(asyncio.gather(b, c, d)) == [["committed"]] * 3
    await sleeps.asleep()  # e is stuck now
    await settled(waiting)  # 2 wait: half of max_backlog
    assert not e.done()

    third.unlink()
    sleeps.wake()
    assert await settled(e) == ["committed"]
    await settled(store.room(), 1)


async def test_by_default_room_lets_2000_item_changes_wait_for_the_writer(
    store: Store, tmp_path: Path, sleeps: RetrySleeps
):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    obstacle = tmp_path / "obstacle"
    many = [(2, item(index, ITEM_RUNNING)) for index in range(2000)]
    stuck = submitted(store, Change(job("j1"), 2, items=many, artifacts=[[blocked(obstacle)]]))
    await sleeps.asleep()
    await settled(store.room(), 1)

    one_more = submitted(store, Change(job("j1"), 3, items=[(3, item(2000, ITEM_RUNNING))]))
    waiting = asyncio.ensure_future(store.room())
    await asyncio.sleep(0.1)
    assert not waiting.done()

    obstacle.unlink()
    sleeps.wake()
    assert await settled(asyncio.gather(stuck, one_more)) == [["committed"]] * 2
    await settled(waiting)
    assert await store.size() == (1, 2001)


# Pages.


async def test_item_pages_hold_the_stored_items_of_one_job_in_index_order(store: Store):
    await settled(store.commit(Change(job("j1"), 1, request_id="")))
    await settled(store.commit(Change(job("j2"), 1, request_id="")))
    # Items 1, 4 and 5 are pending: no rows. Sequences are out of index order.
    items = [
        (5, item(0, ITEM_SUCCEEDED)),
        (3, item(2, ITEM_FAILED)),
        (8, item(3, ITEM_RUNNING)),
        (6, item(6, ITEM_SUCCEEDED)),
    ]
    await settled(store.commit(Change(job("j1"), 8, items=items)))
    await settled(store.commit(Change(job("j2"), 2, items=[(2, item(i, ITEM_SUCCEEDED)) for i in range(7)])))

    assert await store.items_in_range("j1", 0, 7) == [
        item(0, ITEM_SUCCEEDED),
        item(2, ITEM_FAILED),
        item(3, ITEM_RUNNING),
        item(6, ITEM_SUCCEEDED),
    ]
    assert await store.items_in_range("j1", 2, 6) == [item(2, ITEM_FAILED), item(3, ITEM_RUNNING)]
    assert await store.items_in_range("j1", 0, 7, states=[ITEM_SUCCEEDED, ITEM_FAILED]) == [
        item(0, ITEM_SUCCEEDED),
        item(2, ITEM_FAILED),
        item(6, ITEM_SUCCEEDED),
    ]
    assert await store.items_in_range("j1", 1, 7, states=[ITEM_SUCCEEDED]) == [item(6, ITEM_SUCCEEDED)]
    assert await store.items_in_range("j1", 0, 7, limit=2) == [item(0, ITEM_SUCCEEDED), item(2, ITEM_FAILED)]
    assert await store.items_in_range("j1", 0, 7, states=[ITEM_SUCCEEDED], limit=1) == [
        item(0, ITEM_SUCCEEDED)
    ]

    assert await store.indexes_in_range("j1", 0, 7) == [0, 2, 3, 6]
    assert await store.indexes_in_range("j1", 1, 6) == [2, 3]

    # Blocking, in chunks of 2: [0, 2), [2, 4), [4, 6), [6, 8).
    chunks = await asyncio.to_thread(lambda: list(store.iter_items("j1", 7, chunk=2)))
    assert chunks == [
        item(0, ITEM_SUCCEEDED),
        item(2, ITEM_FAILED),
        item(3, ITEM_RUNNING),
        item(6, ITEM_SUCCEEDED),
    ]
    assert await asyncio.to_thread(lambda: list(store.iter_items("j1", 7))) == chunks  # one chunk

    # After sequence 3, up to 8 included, in sequence order.
    assert await store.items_changed("j1", 3, 8, 10) == [
        (5, item(0, ITEM_SUCCEEDED)),
        (6, item(6, ITEM_SUCCEEDED)),
        (8, item(3, ITEM_RUNNING)),
    ]
    assert await store.items_changed("j1", 3, 7, 10) == [
        (5, item(0, ITEM_SUCCEEDED)),
        (6, item(6, ITEM_SUCCEEDED)),
    ]
    assert await store.items_changed("j1", 0, 8, 2) == [
        (3, item(2, ITEM_FAILED)),
        (5, item(0, ITEM_SUCCEEDED)),
    ]
    assert await store.size() == (2, 11)


async def test_jobs_are_listed_newest_first_by_owner_state_and_page_position(store: Store):
    created = [
        ("j1", QUEUED, "alice"),
        ("j2", RUNNING, "bob"),
        ("j3", SUCCEEDED, "alice"),
        ("j4", RUNNING, "alice"),
        ("j5", FAILED, ""),
        ("j6", CANCELLED, "bob"),
    ]
    for position, (job_id, state, owner) in enumerate(created, start=1):
        await settled(store.commit(Change(job(job_id, state, owner), 10 * position, request_id="")))

    async def listed(states=(), before=None, limit=10, owner=None) -> list[tuple[int, str]]:
        return [(position, j.id) for position, j in await store.list_jobs(states, before, limit, owner)]

    assert await store.list_jobs((), None, 1) == [(6, job("j6", CANCELLED, "bob"))]
    assert await listed() == [(6, "j6"), (5, "j5"), (4, "j4"), (3, "j3"), (2, "j2"), (1, "j1")]
    assert await listed(owner="alice") == [(4, "j4"), (3, "j3"), (1, "j1")]
    assert await listed(owner="") == [(5, "j5")]
    assert await listed(owner="carol") == []
    assert await listed(states=[RUNNING, QUEUED]) == [(4, "j4"), (2, "j2"), (1, "j1")]
    assert await listed(before=4, limit=2) == [(3, "j3"), (2, "j2")]
    assert await listed(states=[RUNNING, SUCCEEDED], before=4, owner="alice") == [(3, "j3")]

    assert await store.unfinished_jobs() == [
        (job("j1", QUEUED, "alice"), 10),
        (job("j2", RUNNING, "bob"), 20),
        (job("j4", RUNNING, "alice"), 40),
    ]
    assert await store.size() == (6, 0)


# Opening and closing.


async def test_close_commits_what_is_queued_and_ends_every_thread_and_connection(tmp_path: Path):
    before = set(threading.enumerate())
    path = tmp_path / "data" / "state" / "orchestrator.sqlite3"  # directories made
    store = Store(path)
    writer = [thread for thread in set(threading.enumerate()) - before]
    assert [(thread.name, thread.daemon) for thread in writer] == [("store-writer", True)]
    artifact = ArtifactWrite(str(tmp_path / "story.json"), b"story")
    await settled(store.commit(Change(job("j1", QUEUED), 1, request_id="", artifacts=[[artifact]])))
    await store.size()
    names = sorted(thread.name for thread in set(threading.enumerate()) - before)
    assert names == ["store-artifacts_0", "store-reader_0", "store-writer"]

    queued = submitted(store, Change(job("j1", SUCCEEDED), 2, items=[(2, item(0, ITEM_SUCCEEDED))]))
    close_within(store)  # as the service does, on the event loop
    assert await settled(queued) == ["committed"]
    assert set(threading.enumerate()) - before == set()
    assert not Path(f"{path}-wal").exists()  # the last connection closed checkpoints the log away

    reopened = Store(path)
    try:
        assert await reopened.job("j1") == (job("j1", SUCCEEDED), 2)
        assert await reopened.items_in_range("j1", 0, 8) == [item(0, ITEM_SUCCEEDED)]
    finally:
        close_within(reopened)


async def test_a_new_database_is_created_with_the_current_schema_in_wal_mode(store: Store, tmp_path: Path):
    assert tables(tmp_path / "orchestrator.sqlite3") == (
        {"jobs", "items", "sqlite_sequence"},
        {"jobs_by_owner", "items_by_sequence"},
        2,
        "wal",
    )


async def test_reads_reuse_one_connection_per_reader_thread(store: Store):
    if not Path("/proc/self/fd").is_dir():
        pytest.skip("counts open files in /proc")
    await store.size()
    opened = len(os.listdir("/proc/self/fd"))
    for _ in range(30):
        await store.size()
    assert len(os.listdir("/proc/self/fd")) <= opened + 6  # another reader's connection at most


async def test_reads_run_on_at_most_two_threads_and_close_waits_for_those_in_progress(store: Store):
    """Through the path every query takes (`_read`), with reads that wait for the test: the third waits for
    a reader thread (each holds a connection), and close() for the reads in progress."""
    started = threading.Semaphore(0)
    go_on = threading.Event()

    def read(db: sqlite3.Connection) -> int:
        started.release()
        assert go_on.wait(5)
        return db.execute("SELECT count(*) FROM jobs").fetchone()[0]

    reads = [asyncio.ensure_future(store._read(read)) for _ in range(3)]
    assert await asyncio.to_thread(started.acquire, True, 5)
    assert await asyncio.to_thread(started.acquire, True, 5)
    assert not await asyncio.to_thread(started.acquire, True, 0.2)  # the third waits

    closing = threading.Thread(target=store.close, daemon=True)
    closing.start()
    closing.join(0.2)
    assert closing.is_alive()  # close() waits for the reads
    go_on.set()
    assert await settled(asyncio.gather(*reads)) == [0, 0, 0]
    closing.join(5)
    assert not closing.is_alive()


def test_the_writer_outlives_an_event_loop_that_closed_before_its_changes_were_committed(
    tmp_path: Path, sleeps: RetrySleeps
):
    path = tmp_path / "orchestrator.sqlite3"
    obstacle = tmp_path / "obstacle"
    store = Store(path)
    try:

        async def create() -> None:
            store.submit(Change(job("j1", QUEUED), 1, request_id="", artifacts=[[blocked(obstacle)]]))
            await sleeps.asleep()  # the writer holds the change until the loop is closed

        asyncio.run(create())
        obstacle.unlink()
        sleeps.wake()  # committed now, with no loop left to publish it on

        async def finish() -> None:
            store.submit(Change(job("j1", SUCCEEDED), 2))
            await asyncio.sleep(0)  # handed over

        asyncio.run(finish())
    finally:
        close_within(store)
    reopened = Store(path)
    try:
        assert asyncio.run(reopened.job("j1")) == (job("j1", SUCCEEDED), 2)
    finally:
        close_within(reopened)


# Syncing the artifacts' file system.

HAS_SYNCFS = hasattr(ctypes.CDLL(None), "syncfs")


@pytest.mark.skipif(not HAS_SYNCFS, reason="syncfs(2) is Linux's")
async def test_with_sync_files_a_commit_with_artifacts_first_syncs_their_file_system(
    open_store, tmp_path: Path, sleeps: RetrySleeps, caplog: pytest.LogCaptureFixture
):
    data = tmp_path / "data" / "jobs"
    store = open_store(sync_files=data)
    assert data.is_dir()  # made, with its parent
    open_store(tmp_path / "second.sqlite3", sync_files=data)  # an existing directory will do
    story = ArtifactWrite(str(tmp_path / "artifacts" / "story.json"), b"story")
    await settled(store.commit(Change(job("j1"), 1, request_id="", artifacts=[[story]])))

    # syncfs(2) needs a descriptor of the directory: without it, no change with artifacts can commit.
    data.rmdir()
    await settled(store.commit(Change(job("j1"), 2)))  # nothing to sync
    sleeps.hold = False
    sleeps.then = lambda attempts: data.mkdir()
    image = ArtifactWrite(str(tmp_path / "artifacts" / "image.png"), b"png")
    await settled(store.commit(Change(job("j1"), 3, artifacts=[[image]])))

    assert sleeps.delays == [0.05]
    assert store_messages(caplog) == [
        f"could not commit 1 change(s), retrying: [Errno 2] No such file or directory: '{data}'"
    ]
    assert await store.job("j1") == (job("j1"), 3)
    assert (tmp_path / "artifacts" / "image.png").read_bytes() == b"png"


@pytest.mark.skipif(not HAS_SYNCFS, reason="syncfs(2) is Linux's")
async def test_a_failed_syncfs_holds_the_commit_back_until_it_succeeds(
    open_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    """The one faked call: a real syncfs fails only on a disk's write-back error, which a test cannot
    cause. The C library's syncfs is wrapped: its first call is given a closed descriptor (a real EBADF
    from the real call), the others the store's own, which must be the sync directory's."""
    data = tmp_path / "data"
    real_library = ctypes.CDLL
    given: list[bool] = []

    def library(name: str | None, use_errno: bool = False) -> SimpleNamespace:
        syncfs = real_library(name, use_errno=use_errno).syncfs

        def wrapped(fd: int) -> int:
            given.append(os.path.samestat(os.fstat(fd), os.stat(data)))
            return syncfs(-1 if len(given) == 1 else fd)

        return SimpleNamespace(syncfs=wrapped)

    with monkeypatch.context() as patch:
        patch.setattr(ctypes, "CDLL", library)
        store = open_store(sync_files=data)
    story = ArtifactWrite(str(tmp_path / "artifacts" / "story.json"), b"story")
    await settled(store.commit(Change(job("j1"), 1, request_id="", artifacts=[[story]])))

    assert given == [True, True]
    assert store_messages(caplog) == [f"could not commit 1 change(s), retrying: [Errno 9] syncfs {data}"]
    assert await store.job("j1") == (job("j1"), 1)


# Migration from older schemas (the store's docstring; the schemas are those of the commits that made
# each version, c148fca and 581bcbd).

# Items (a row for every item) and the event log: the same in versions 0 and 1.
OLD_ITEMS_AND_EVENTS = """
CREATE TABLE items (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    state INTEGER NOT NULL,
    item BLOB NOT NULL,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
CREATE TABLE events (
    job_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;
"""
V0_SCHEMA = """
CREATE TABLE jobs (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    request_id TEXT UNIQUE,
    state INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    job BLOB NOT NULL
);
""" + OLD_ITEMS_AND_EVENTS
V1_SCHEMA = """
CREATE TABLE jobs (
    position INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL DEFAULT '',
    request_id TEXT,
    state INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    job BLOB NOT NULL,
    UNIQUE (owner, request_id)
);
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, position);
""" + OLD_ITEMS_AND_EVENTS + "PRAGMA user_version = 1;\n"


def old_database(
    path: Path, schema: str, jobs: list[tuple], items: list[tuple[str, pipeline_pb2.Item]]
) -> None:
    """A database written by an older orchestrator: every item has a row (pending ones too) and events."""
    db = sqlite3.connect(path)
    try:
        db.executescript(schema)
        columns = (
            "position, id, owner, request_id, state, last_sequence"
            if len(jobs[0]) == 6
            else ("position, id, request_id, state, last_sequence")
        )
        for row in jobs:
            job_id, state = row[1], row[-2]
            blob = pipeline_pb2.Job(id=job_id, state=state).SerializeToString()
            db.execute(
                f"INSERT INTO jobs ({columns}, job) VALUES ({', '.join('?' * len(row))}, ?)", (*row, blob)
            )
        for job_id, old in items:
            db.execute(
                "INSERT INTO items (job_id, position, state, item) VALUES (?, ?, ?, ?)",
                (job_id, old.index, old.state, old.SerializeToString()),
            )
            db.execute(
                "INSERT INTO events (job_id, sequence, event) VALUES (?, ?, ?)", (job_id, old.index, b"")
            )
        db.commit()
    finally:
        db.close()


async def test_a_version_0_database_gets_anonymous_owners_last_sequences_and_no_pending_rows(
    open_store, tmp_path: Path
):
    path = tmp_path / "orchestrator.sqlite3"
    jobs = [(3, "old1", "key", RUNNING, 7), (8, "old2", None, SUCCEEDED, 12)]
    items = [
        ("old1", item(0, ITEM_PENDING)),
        ("old1", item(1, ITEM_RUNNING)),
        ("old1", item(2, ITEM_SUCCEEDED)),
        ("old2", item(0, ITEM_SUCCEEDED)),
    ]
    old_database(path, V0_SCHEMA, jobs, items)
    store = open_store(path)

    assert tables(path) == (
        {"jobs", "items", "sqlite_sequence"},
        {"jobs_by_owner", "items_by_sequence"},
        2,
        "wal",
    )
    old1, old2 = pipeline_pb2.Job(id="old1", state=RUNNING), pipeline_pb2.Job(id="old2", state=SUCCEEDED)
    assert await store.list_jobs((), None, 10, owner="") == [(8, old2), (3, old1)]  # positions kept
    assert await store.job_id_for_request("", "key") == "old1"
    assert await store.job("old1") == (old1, 7)
    assert await store.items_changed("old1", 0, 7, 10) == [
        (7, item(1, ITEM_RUNNING)),
        (7, item(2, ITEM_SUCCEEDED)),
    ]
    assert await store.items_changed("old2", 0, 12, 10) == [(12, item(0, ITEM_SUCCEEDED))]
    assert await store.size() == (2, 3)

    # New jobs follow the old ones; a key is now per identity.
    await settled(store.commit(Change(job("new", QUEUED, "alice"), 1, request_id="key")))
    assert [(position, j.id) for position, j in await store.list_jobs((), None, 1)] == [(9, "new")]
    assert await store.job_id_for_request("alice", "key") == "new"


async def test_a_version_1_database_keeps_its_owners_and_their_keys(open_store, tmp_path: Path):
    path = tmp_path / "orchestrator.sqlite3"
    jobs = [
        (1, "a1", "alice", "key", RUNNING, 4),
        (2, "b1", "bob", "key", QUEUED, 0),
        (5, "anonymous", "", None, SUCCEEDED, 9),
    ]
    items = [("a1", item(0, ITEM_SUCCEEDED)), ("a1", item(1, ITEM_PENDING)), ("b1", item(0, ITEM_PENDING))]
    old_database(path, V1_SCHEMA, jobs, items)
    store = open_store(path)

    assert tables(path) == (
        {"jobs", "items", "sqlite_sequence"},
        {"jobs_by_owner", "items_by_sequence"},
        2,
        "wal",
    )
    a1 = pipeline_pb2.Job(id="a1", state=RUNNING)
    assert await store.list_jobs((), None, 10, owner="alice") == [(1, a1)]
    assert [(position, j.id) for position, j in await store.list_jobs((), None, 10, owner="")] == [
        (5, "anonymous")
    ]
    assert await store.job_id_for_request("alice", "key") == "a1"
    assert await store.job_id_for_request("bob", "key") == "b1"
    assert await store.job_id_for_request("", "key") is None
    assert await store.unfinished_jobs() == [(a1, 4), (pipeline_pb2.Job(id="b1", state=QUEUED), 0)]
    assert await store.items_changed("a1", 0, 4, 10) == [(4, item(0, ITEM_SUCCEEDED))]
    assert await store.size() == (3, 1)


async def test_a_current_database_is_opened_as_it_is(open_store, tmp_path: Path):
    path = tmp_path / "orchestrator.sqlite3"
    first = open_store(path)
    await settled(
        first.commit(
            Change(job("j1", QUEUED, "alice"), 3, request_id="key", items=[(3, item(0, ITEM_RUNNING))])
        )
    )
    close_within(first)

    again = open_store(path)
    assert tables(path) == (
        {"jobs", "items", "sqlite_sequence"},
        {"jobs_by_owner", "items_by_sequence"},
        2,
        "wal",
    )
    assert await again.job("j1") == (job("j1", QUEUED, "alice"), 3)
    assert await again.job_id_for_request("alice", "key") == "j1"
    assert await again.items_changed("j1", 0, 3, 10) == [(3, item(0, ITEM_RUNNING))]
