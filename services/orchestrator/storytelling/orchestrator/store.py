"""Job and item state in SQLite (stdlib sqlite3, WAL), kept off the event loop.

Two tables: `jobs` (the Job without items, its state and the sequence of its latest change) and `items`
(one row per item that has left PENDING: its state, the sequence of its latest change and the Item).
A pending item has no row: its index and seeds follow from the job. The state is all the database
holds: there is no event log, so it grows with the items, never with their progress, and a watcher
that resumes reads the items that changed after its sequence (index `items_by_sequence`).

Writes go through one writer thread with group commit: the changes of one event-loop iteration are
handed over together, changes queue up while a transaction commits, and the next transaction takes all
of them, keeping only the latest version of each row. A change may carry the artifacts it records:
the writer writes them first, so the event loop never waits for a file and a stage is never recorded
without its artifact. With `sync_files`, the file system holding the artifacts is synced (one syncfs)
before each commit that follows new artifacts, so a state that a commit records never refers to
artifacts a power loss could take back. A change's `on_commit` runs on the event loop once it is
committed, which is when the orchestrator publishes it.
Reads run on a small pool of threads, each with its own connection (WAL readers never block the writer).
synchronous=NORMAL survives a killed process; after a power loss the last transactions may roll back,
which resume repairs from the artifacts on disk.

Schema versions (PRAGMA user_version): 1 added jobs.owner, the identity whose token created the job,
and made idempotency keys unique per owner instead of globally; 2 dropped the event log, numbers each
job's and item's latest change (`sequence`) and keeps no rows for pending items. An older database is
migrated in one transaction when it is opened (version-0 jobs keep the empty owner of the anonymous
caller; item rows take their job's last sequence).
"""

import asyncio
import ctypes
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from storytelling.api.layout import ArtifactWrite, UnsafePath, write_artifacts
from storytelling.api.vocabulary import ENDED_ITEM_STATES, TERMINAL_JOB_STATES
from storytelling.v1 import pipeline_pb2

logger = logging.getLogger(__name__)

T = TypeVar("T")

SCHEMA_VERSION = 2
_JOBS = """
CREATE TABLE {name} (
    position INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for listing and page tokens
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL DEFAULT '',               -- identity of the creating token; '' without auth
    request_id TEXT,                              -- idempotency key; NULL when the caller gave none
    state INTEGER NOT NULL,
    sequence INTEGER NOT NULL,                    -- of the job's latest change
    job BLOB NOT NULL,                            -- Job without items
    UNIQUE (owner, request_id)
)
"""
_ITEMS = """
CREATE TABLE {name} (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    state INTEGER NOT NULL,                       -- wins over the state inside `item`
    sequence INTEGER NOT NULL,                    -- of the item's latest change
    item BLOB NOT NULL,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID
"""
_INDEXES = """
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, position);
CREATE INDEX IF NOT EXISTS items_by_sequence ON items (job_id, sequence);
"""

_ENDED_ITEMS = ", ".join(str(state) for state in sorted(ENDED_ITEM_STATES))


@dataclass
class Change:
    """One durable change of a job: the job row and any item rows, committed together."""

    job: pipeline_pb2.Job
    sequence: int
    # (sequence of the item's change, item snapshot); snapshots are not mutated after they are handed
    # over (the writer serializes them).
    items: Sequence[tuple[int, pipeline_pb2.Item]] = ()
    request_id: str | None = None  # set on the change that creates the job
    # The job ended: rows of items that had not ended become CANCELLED.
    cancel_unended: bool = False
    # The artifacts the change records, written before the commit: a stage is never recorded as done
    # without its artifact, and the event loop never waits for a file. Each group is written in order
    # (an image before its image.json).
    artifacts: Sequence[Sequence[ArtifactWrite]] = ()
    # Runs on the event loop once the change is committed.
    on_commit: Callable[[], None] | None = None
    # Runs on the event loop instead, with the error, when the change can never be committed: one of its
    # artifacts is refused (a path leading out of its job directory). Other changes are not held back.
    on_error: Callable[[BaseException], None] | None = None
    future: asyncio.Future[None] | None = field(default=None, init=False)
    blob: bytes = field(init=False)

    def __post_init__(self) -> None:
        # Serialized now, on the event loop that owns the job: the writer thread never reads it.
        self.blob = self.job.SerializeToString()


class Store:
    """`max_backlog`: item changes queued but not committed before `room()` makes writers wait (what
    bounds memory when the disk is slower than the jobs). `artifact_threads`: threads writing a group's
    artifacts at once (file creation is slow on some disks)."""

    def __init__(
        self,
        path: Path,
        *,
        sync_files: Path | None = None,
        readers: int = 2,
        artifact_threads: int = 8,
        max_backlog: int = 2000,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._sync = _FileSystemSync(sync_files) if sync_files is not None else None
        db = self._connect()
        try:
            db.execute("PRAGMA journal_mode=WAL")
            _migrate(db)
            db.executescript(_INDEXES)
        finally:
            db.close()
        self._queue: queue.SimpleQueue[list[Change] | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="store-reader")
        self._artifact_threads = artifact_threads
        self._artifacts = ThreadPoolExecutor(artifact_threads, thread_name_prefix="store-artifacts")
        # Changes of this loop iteration, handed to the writer together at its end.
        self._outbox: list[Change] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._max_backlog = max_backlog
        self._backlog = 0
        self._drained: asyncio.Event | None = None
        self.commits = 0  # transactions committed, for tests and benchmarks
        self.rows_written = 0

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        return db

    def close(self) -> None:
        """Commits what is queued, then closes every connection."""
        self._hand_over()
        self._queue.put(None)
        self._writer.join()
        self._readers.shutdown(wait=True)
        self._artifacts.shutdown(wait=True)
        for db in self._connections:
            db.close()

    # Writes.

    def submit(self, change: Change) -> None:
        """Queues `change` without waiting; its on_commit runs on this event loop once committed."""
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop, self._drained = loop, asyncio.Event()
        self._outbox.append(change)
        self._backlog += max(1, len(change.items))
        if len(self._outbox) == 1:
            loop.call_soon(self._hand_over)

    async def commit(self, change: Change) -> None:
        """Queues `change` and returns once it is committed."""
        change.future = asyncio.get_running_loop().create_future()
        self.submit(change)
        await change.future

    async def flush(self) -> None:
        """Returns once everything queued so far is committed."""
        await self.commit(Change(pipeline_pb2.Job(), 0))

    async def room(self) -> None:
        """Waits while more than `max_backlog` item changes wait for the writer (a disk slower than the
        jobs): what is not yet written is in memory."""
        while self._drained is not None and self._backlog > self._max_backlog:
            self._drained.clear()
            await self._drained.wait()

    def _hand_over(self) -> None:
        batch, self._outbox = self._outbox, []
        if batch:
            self._queue.put(batch)

    def _write_loop(self) -> None:
        db = self._connect()
        try:
            stopping = False
            while not stopping:
                group: list[Change] = []
                batch = self._queue.get()
                while True:  # everything handed over during the last commit goes into this one
                    if batch is None:
                        stopping = True
                    else:
                        group.extend(batch)
                    try:
                        batch = self._queue.get_nowait()
                    except queue.Empty:
                        break
                if group:
                    self._commit_group(db, group)
        finally:
            db.close()

    def _commit_group(self, db: sqlite3.Connection, group: list[Change]) -> None:
        changes = [c for c in group if c.job.id]
        refused: dict[int, BaseException] = {}  # id(change): why its artifacts cannot be written
        delay = 0.05
        error: BaseException | None = None
        while True:
            try:
                refused = self._write_artifacts(changes)
                with _transaction(db):
                    self.rows_written += _apply(db, [c for c in changes if id(c) not in refused])
                self.commits += 1
                break
            except (sqlite3.OperationalError, OSError) as failure:  # locked, disk full, I/O: may pass
                logger.error("could not commit %d change(s), retrying: %s", len(changes), failure)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception as failure:  # a bug or a constraint: these changes can never commit
                logger.exception("dropped %d change(s) that cannot be committed", len(changes))
                error = failure
                break
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(self._committed, group, error, refused)

    def _write_artifacts(self, changes: list[Change]) -> dict[int, BaseException]:
        """Writes the changes' artifacts and syncs them; returns the changes whose artifacts are refused
        (by id, with the reason). I/O errors are raised: they may pass, and the group is tried again."""
        groups = [group for c in changes for group in c.artifacts]
        # In as many batches as there are workers: one task per file costs more than a small file on a
        # fast disk, and a slow disk still gets writes in parallel. A group stays in one batch, in order.
        workers = self._artifact_threads
        batches = [
            [write for group in groups[n::workers] for write in group]
            for n in range(min(len(groups), workers))
        ]
        refused: dict[int, BaseException] = {}
        written = [self._artifacts.submit(write_artifacts, batch, False) for batch in batches]
        # Every batch ends before a failure is handled: the changes are then written again, one by one
        # or in a retry, and a batch still running would write the same files at the same time.
        wait(written)
        try:
            for done in written:
                done.result()
        except UnsafePath:  # rare: find the changes it comes from, one by one; the others are written
            for change in changes:
                try:
                    for group in change.artifacts:
                        write_artifacts(group, False)
                except UnsafePath as unsafe:
                    logger.error("job %s: an artifact is refused: %s", change.job.id, unsafe)
                    refused[id(change)] = unsafe
        if self._sync is not None and groups:
            self._sync.sync()
        return refused

    def _committed(
        self, group: list[Change], error: BaseException | None, refused: dict[int, BaseException]
    ) -> None:
        """On the event loop: publishes the committed changes in order and wakes those waiting."""
        self._backlog -= sum(max(1, len(change.items)) for change in group)
        for change in group:
            failure = error or refused.get(id(change))
            if failure is None and change.on_commit is not None:
                change.on_commit()
            if failure is not None and change.on_error is not None:
                change.on_error(failure)
            if change.future is not None and not change.future.done():
                if failure is None:
                    change.future.set_result(None)
                else:
                    change.future.set_exception(failure)
        if self._drained is not None and self._backlog <= self._max_backlog // 2:
            self._drained.set()

    # Reads (on the reader threads).

    async def _read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._readers, self._run_read, function)

    def _run_read(self, function: Callable[[sqlite3.Connection], T]) -> T:
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
            with self._connections_lock:
                self._connections.append(db)
        return function(db)

    async def job(self, job_id: str) -> tuple[pipeline_pb2.Job, int] | None:
        """The job without items and the sequence of its latest change."""

        def read(db: sqlite3.Connection) -> tuple[pipeline_pb2.Job, int] | None:
            row = db.execute("SELECT job, sequence FROM jobs WHERE id = ?", (job_id,)).fetchone()
            return (pipeline_pb2.Job.FromString(row[0]), row[1]) if row else None

        return await self._read(read)

    async def job_id_for_request(self, owner: str, request_id: str) -> str | None:
        """The job `owner` created with this idempotency key (keys belong to their identity)."""

        def read(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT id FROM jobs WHERE owner = ? AND request_id = ?", (owner, request_id)
            ).fetchone()
            return row[0] if row else None

        return await self._read(read)

    async def items_in_range(
        self, job_id: str, start: int, stop: int, states: Sequence[int] = (), limit: int | None = None
    ) -> list[pipeline_pb2.Item]:
        """Items with a row and index in [start, stop), in index order, optionally only in `states`."""

        def read(db: sqlite3.Connection) -> list[pipeline_pb2.Item]:
            where, parameters = "job_id = ? AND position >= ? AND position < ?", [job_id, start, stop]
            if states:
                where += f" AND state IN ({', '.join('?' * len(states))})"
                parameters.extend(states)
            sql = f"SELECT state, item FROM items WHERE {where} ORDER BY position"
            if limit is not None:
                sql += f" LIMIT {int(limit)}"
            return [_item(state, blob) for state, blob in db.execute(sql, parameters)]

        return await self._read(read)

    def iter_items(self, job_id: str, total: int, chunk: int = 500) -> Iterator[pipeline_pb2.Item]:
        """Every stored item of a job in index order, a chunk at a time. Blocking: for worker threads
        (the gallery), which read on a connection of their own."""
        for start in range(0, total, chunk):

            def read(db: sqlite3.Connection, start: int = start) -> list[pipeline_pb2.Item]:
                rows = db.execute(
                    "SELECT state, item FROM items WHERE job_id = ? AND position >= ? AND position < ? "
                    "ORDER BY position",
                    (job_id, start, start + chunk),
                )
                return [_item(state, blob) for state, blob in rows]

            yield from self._run_read(read)

    async def indexes_in_range(self, job_id: str, start: int, stop: int) -> list[int]:
        """Indexes in [start, stop) of the items that have a row (have left PENDING)."""

        def read(db: sqlite3.Connection) -> list[int]:
            rows = db.execute(
                "SELECT position FROM items WHERE job_id = ? AND position >= ? AND position < ? "
                "ORDER BY position",
                (job_id, start, stop),
            )
            return [position for (position,) in rows]

        return await self._read(read)

    async def items_changed(
        self, job_id: str, after_sequence: int, up_to: int, limit: int
    ) -> list[tuple[int, pipeline_pb2.Item]]:
        """(sequence, item) of the items whose latest change is in (after_sequence, up_to], in order."""

        def read(db: sqlite3.Connection) -> list[tuple[int, pipeline_pb2.Item]]:
            rows = db.execute(
                "SELECT sequence, state, item FROM items WHERE job_id = ? AND sequence > ? AND sequence <= ? "
                "ORDER BY sequence LIMIT ?",
                (job_id, after_sequence, up_to, limit),
            )
            return [(sequence, _item(state, blob)) for sequence, state, blob in rows]

        return await self._read(read)

    async def list_jobs(
        self, states: Sequence[int], before_position: int | None, limit: int, owner: str | None = None
    ) -> list[tuple[int, pipeline_pb2.Job]]:
        """Jobs newest first, with their positions (for page tokens); only `owner`'s unless None."""

        def read(db: sqlite3.Connection) -> list[tuple[int, pipeline_pb2.Job]]:
            where, parameters = ["1"], []
            if owner is not None:
                where.append("owner = ?")
                parameters.append(owner)
            if states:
                where.append(f"state IN ({', '.join('?' * len(states))})")
                parameters.extend(states)
            if before_position is not None:
                where.append("position < ?")
                parameters.append(before_position)
            rows = db.execute(
                f"SELECT position, job FROM jobs WHERE {' AND '.join(where)} ORDER BY position DESC LIMIT ?",
                (*parameters, limit),
            ).fetchall()
            return [(position, pipeline_pb2.Job.FromString(blob)) for position, blob in rows]

        return await self._read(read)

    async def unfinished_jobs(self) -> list[tuple[pipeline_pb2.Job, int]]:
        """Jobs that had not ended, oldest first, with their sequences."""

        def read(db: sqlite3.Connection) -> list[tuple[pipeline_pb2.Job, int]]:
            ended = ", ".join(str(state) for state in sorted(TERMINAL_JOB_STATES))
            rows = db.execute(
                f"SELECT job, sequence FROM jobs WHERE state NOT IN ({ended}) ORDER BY position"
            ).fetchall()
            return [(pipeline_pb2.Job.FromString(blob), sequence) for blob, sequence in rows]

        return await self._read(read)

    async def size(self) -> tuple[int, int]:
        """(job rows, item rows), for tests and benchmarks."""

        def read(db: sqlite3.Connection) -> tuple[int, int]:
            jobs = db.execute("SELECT count(*) FROM jobs").fetchone()[0]
            return jobs, db.execute("SELECT count(*) FROM items").fetchone()[0]

        return await self._read(read)


def _item(state: int, blob: bytes) -> pipeline_pb2.Item:
    item = pipeline_pb2.Item.FromString(blob)
    item.state = state
    return item


def _apply(db: sqlite3.Connection, changes: Sequence[Change]) -> int:
    """Writes a group of changes in order, each row once in its latest version; returns rows written."""
    jobs: dict[str, Change] = {}
    items: dict[tuple[str, int], tuple[int, int, pipeline_pb2.Item]] = {}
    written = 0
    for change in changes:
        job_id = change.job.id
        if change.request_id is not None:  # a new job: inserted now, so later changes update it
            db.execute(
                "INSERT INTO jobs (id, owner, request_id, state, sequence, job) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    job_id,
                    change.job.owner,
                    change.request_id or None,
                    change.job.state,
                    change.sequence,
                    change.blob,
                ),
            )
        jobs[job_id] = change
        for sequence, item in change.items:
            items[job_id, item.index] = (item.state, sequence, item)
        if change.cancel_unended:
            written += _flush_items(db, items)
            items.clear()
            written += db.execute(
                f"UPDATE items SET state = ?, sequence = ? WHERE job_id = ? AND state NOT IN ({_ENDED_ITEMS})",
                (pipeline_pb2.ITEM_STATE_CANCELLED, change.sequence, job_id),
            ).rowcount
    written += _flush_items(db, items)
    db.executemany(
        "UPDATE jobs SET state = ?, sequence = ?, job = ? WHERE id = ?",
        [(c.job.state, c.sequence, c.blob, job_id) for job_id, c in jobs.items()],
    )
    return written + len(jobs)


def _flush_items(
    db: sqlite3.Connection, items: dict[tuple[str, int], tuple[int, int, pipeline_pb2.Item]]
) -> int:
    db.executemany(
        "INSERT INTO items (job_id, position, state, sequence, item) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (job_id, position) DO UPDATE SET "
        "state = excluded.state, sequence = excluded.sequence, item = excluded.item",
        [
            (job_id, index, state, sequence, item.SerializeToString())
            for (job_id, index), (state, sequence, item) in items.items()
        ],
    )
    return len(items)


def _migrate(db: sqlite3.Connection) -> None:
    """Creates the tables, or brings an older database to SCHEMA_VERSION in one transaction (SQLite
    cannot change columns or a UNIQUE constraint in place: tables are rebuilt, positions kept)."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if version >= SCHEMA_VERSION and "jobs" in tables:
        return
    with _transaction(db):
        db.execute(_JOBS.format(name="jobs_next"))
        db.execute(_ITEMS.format(name="items_next"))
        if "jobs" in tables:
            owner = "owner" if version >= 1 else "''"
            db.execute(
                "INSERT INTO jobs_next (position, id, owner, request_id, state, sequence, job) "
                f"SELECT position, id, {owner}, request_id, state, last_sequence, job FROM jobs"
            )
            db.execute("DROP TABLE jobs")
        if "items" in tables:
            db.execute(
                "INSERT INTO items_next (job_id, position, state, sequence, item) "
                "SELECT items.job_id, items.position, items.state, jobs_next.sequence, items.item "
                "FROM items JOIN jobs_next ON jobs_next.id = items.job_id WHERE items.state != ?",
                (pipeline_pb2.ITEM_STATE_PENDING,),
            )
            db.execute("DROP TABLE items")
        db.execute("DROP TABLE IF EXISTS events")
        db.execute("ALTER TABLE jobs_next RENAME TO jobs")
        db.execute("ALTER TABLE items_next RENAME TO items")
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


@contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on error (the connection runs in autocommit mode)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


class _FileSystemSync:
    """Flushes the file system holding `directory` to disk: syncfs(2) where the C library has it (Linux),
    else sync(2). One call covers every artifact written since the last, however many."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self._directory = directory
        # The C library already loaded into this process (find_library would fork a process to look).
        self._syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)

    def sync(self) -> None:
        if self._syncfs is None:
            os.sync()
            return
        fd = os.open(self._directory, os.O_RDONLY)
        try:
            if self._syncfs(fd) != 0:
                raise OSError(ctypes.get_errno(), f"syncfs {self._directory}")
        finally:
            os.close(fd)
