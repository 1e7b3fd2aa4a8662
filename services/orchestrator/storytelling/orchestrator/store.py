"""Job, item and event state in SQLite (stdlib sqlite3, WAL).

Rows hold serialized protobuf messages plus the columns we query on. Every state change is one
transaction that updates the job and item rows and appends the events describing the change, so the
event log and the state never disagree. synchronous=NORMAL survives a killed process; after a power loss
the last transactions may roll back, which resume repairs from the artifacts on disk.

All calls are short and run on the event loop thread: one connection, no locking between tasks.

Schema versions (PRAGMA user_version): 1 added jobs.owner, the identity whose token created the job,
and made idempotency keys unique per owner instead of globally; a version-0 database is migrated when
it is opened (its jobs keep the empty owner of the anonymous caller).
"""

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from google.protobuf import timestamp_pb2

from storytelling.api.vocabulary import TERMINAL_JOB_STATES
from storytelling.v1 import pipeline_pb2

SCHEMA_VERSION = 1
_JOBS = """
CREATE TABLE {name} (
    position INTEGER PRIMARY KEY AUTOINCREMENT,  -- creation order, for listing and page tokens
    id TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL DEFAULT '',               -- identity of the creating token; '' without auth
    request_id TEXT,                              -- idempotency key; NULL when the caller gave none
    state INTEGER NOT NULL,
    last_sequence INTEGER NOT NULL DEFAULT 0,
    job BLOB NOT NULL,                            -- Job without items
    UNIQUE (owner, request_id)
);
"""
_SCHEMA = """
CREATE INDEX IF NOT EXISTS jobs_by_owner ON jobs (owner, position);
CREATE TABLE IF NOT EXISTS items (
    job_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    state INTEGER NOT NULL,
    item BLOB NOT NULL,
    PRIMARY KEY (job_id, position)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    sequence INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (job_id, sequence)
) WITHOUT ROWID;
"""


class Store:
    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._migrate()
        self._db.executescript(_SCHEMA)

    def _migrate(self) -> None:
        """Creates the jobs table, or brings a version-0 one to version 1 (SQLite cannot change a
        UNIQUE constraint in place: the table is rebuilt in one transaction, positions kept)."""
        (version,) = self._db.execute("PRAGMA user_version").fetchone()
        exists = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='jobs'").fetchone()
        if exists and version >= SCHEMA_VERSION:
            return
        with _transaction(self._db):
            if not exists:
                self._db.execute(_JOBS.format(name="jobs"))
            else:
                self._db.execute(_JOBS.format(name="jobs_v1"))
                self._db.execute(
                    "INSERT INTO jobs_v1 (position, id, owner, request_id, state, last_sequence, job) "
                    "SELECT position, id, '', request_id, state, last_sequence, job FROM jobs"
                )
                self._db.execute("DROP TABLE jobs")
                self._db.execute("ALTER TABLE jobs_v1 RENAME TO jobs")
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def close(self) -> None:
        self._db.close()

    def create(
        self,
        job: pipeline_pb2.Job,
        items: Sequence[pipeline_pb2.Item],
        request_id: str,
        events: Sequence[pipeline_pb2.JobEvent],
    ) -> list[pipeline_pb2.JobEvent]:
        with _transaction(self._db):
            self._db.execute(
                "INSERT INTO jobs (id, owner, request_id, state, last_sequence, job) VALUES (?, ?, ?, ?, ?, ?)",
                (job.id, job.owner, request_id or None, job.state, len(events), job.SerializeToString()),
            )
            self._save_items(
                job.id, items, "INSERT INTO items (state, item, job_id, position) VALUES (?, ?, ?, ?)"
            )
            return self._append(job.id, events, first=1)

    def commit(
        self,
        job: pipeline_pb2.Job,
        items: Sequence[pipeline_pb2.Item] = (),
        events: Sequence[pipeline_pb2.JobEvent] = (),
    ) -> list[pipeline_pb2.JobEvent]:
        """Saves the job and `items` and appends `events` (sequence, job id and time filled in)."""
        with _transaction(self._db):
            (last,) = self._db.execute(
                "UPDATE jobs SET state = ?, job = ?, last_sequence = last_sequence + ? WHERE id = ? "
                "RETURNING last_sequence",
                (job.state, job.SerializeToString(), len(events), job.id),
            ).fetchone()
            if items:
                self._save_items(
                    job.id, items, "UPDATE items SET state = ?, item = ? WHERE job_id = ? AND position = ?"
                )
            return self._append(job.id, events, first=last - len(events) + 1)

    def _save_items(self, job_id: str, items: Sequence[pipeline_pb2.Item], statement: str) -> None:
        self._db.executemany(
            statement, [(item.state, item.SerializeToString(), job_id, item.index) for item in items]
        )

    def _append(
        self, job_id: str, events: Sequence[pipeline_pb2.JobEvent], first: int
    ) -> list[pipeline_pb2.JobEvent]:
        now = timestamp_pb2.Timestamp()
        now.GetCurrentTime()
        for sequence, event in enumerate(events, start=first):
            event.sequence, event.job_id = sequence, job_id
            event.time.CopyFrom(now)
        self._db.executemany(
            "INSERT INTO events (job_id, sequence, event) VALUES (?, ?, ?)",
            [(job_id, event.sequence, event.SerializeToString()) for event in events],
        )
        return list(events)

    def job(self, job_id: str) -> pipeline_pb2.Job | None:
        row = self._db.execute("SELECT job FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return pipeline_pb2.Job.FromString(row[0]) if row else None

    def job_id_for_request(self, owner: str, request_id: str) -> str | None:
        row = self._db.execute(
            "SELECT id FROM jobs WHERE owner = ? AND request_id = ?", (owner, request_id)
        ).fetchone()
        return row[0] if row else None

    def items(self, job_id: str) -> list[pipeline_pb2.Item]:
        rows = self._db.execute(
            "SELECT item FROM items WHERE job_id = ? ORDER BY position", (job_id,)
        ).fetchall()
        return [pipeline_pb2.Item.FromString(row[0]) for row in rows]

    def list_jobs(
        self, states: Sequence[int], before_position: int | None, limit: int, owner: str | None = None
    ) -> list[tuple[int, pipeline_pb2.Job]]:
        """Jobs newest first, with their positions (for page tokens); only `owner`'s unless None."""
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
        rows = self._db.execute(
            f"SELECT position, job FROM jobs WHERE {' AND '.join(where)} ORDER BY position DESC LIMIT ?",
            (*parameters, limit),
        ).fetchall()
        return [(position, pipeline_pb2.Job.FromString(blob)) for position, blob in rows]

    def unfinished_jobs(self) -> list[pipeline_pb2.Job]:
        ended = ", ".join(str(state) for state in TERMINAL_JOB_STATES)
        rows = self._db.execute(f"SELECT job FROM jobs WHERE state NOT IN ({ended}) ORDER BY position")
        return [pipeline_pb2.Job.FromString(row[0]) for row in rows]

    def events(self, job_id: str, after_sequence: int, limit: int = 1000) -> list[pipeline_pb2.JobEvent]:
        rows = self._db.execute(
            "SELECT event FROM events WHERE job_id = ? AND sequence > ? ORDER BY sequence LIMIT ?",
            (job_id, after_sequence, limit),
        ).fetchall()
        return [pipeline_pb2.JobEvent.FromString(row[0]) for row in rows]


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
