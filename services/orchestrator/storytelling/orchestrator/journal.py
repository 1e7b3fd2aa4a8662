"""A job's durable changes: numbered, stored with group commit, then published to its watchers.

Every change of a job's state or of an item's state or stage gets the job's next sequence number and
goes to the store without waiting (the changes of one loop iteration together); it is published to the
job's feed only once committed, so no watcher ever sees a change that a crash could take back. Stage
progress skips the store and goes straight to the feed.
"""

import asyncio
import time
from collections.abc import Callable, Sequence

from google.protobuf import timestamp_pb2

from storytelling.api.layout import ArtifactWrite
from storytelling.v1 import pipeline_pb2

from .events import Feeds, Progress
from .store import Change, Store


def now() -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(time.time_ns(), 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


def counts_of(job: pipeline_pb2.Job) -> pipeline_pb2.JobCounts:
    return pipeline_pb2.JobCounts(
        stages=job.stages, items_succeeded=job.items_succeeded, items_failed=job.items_failed
    )


def without_items(job: pipeline_pb2.Job) -> pipeline_pb2.Job:
    copy = pipeline_pb2.Job()
    copy.CopyFrom(job)
    del copy.items[:]
    return copy


class Journal:
    """The changes of one job, after its latest stored one (`sequence`); `store` and `feeds` None keep
    nothing (RunItem's throwaway job).

    The changes made in one event-loop iteration are one batch: stored as one change, with the job's
    counters brought up to date once (`materialize`, which the runner sets) and the job serialized once.
    An item changed several times within a batch gets one event with its latest state (the others were
    never visible apart); each event gets its own sequence and carries the counters once its batch is
    applied.
    """

    def __init__(self, job_id: str, sequence: int, store: Store | None, feeds: Feeds | None):
        self.job_id = job_id
        self.sequence = sequence
        self._store, self._feeds = store, feeds
        self.materialize: Callable[[], pipeline_pb2.Job] | None = None
        # Called with the error when a change can never be stored (an artifact refused).
        self.broken: Callable[[BaseException], None] | None = None
        self._job: pipeline_pb2.Job | None = None
        self._states: list[int] = []
        self._items: dict[int, pipeline_pb2.Item] = {}
        self._writes: list[Sequence[ArtifactWrite]] = []

    def items(
        self,
        job: pipeline_pb2.Job,
        items: Sequence[pipeline_pb2.Item],
        *,
        artifacts: Sequence[ArtifactWrite] = (),
    ) -> None:
        """Records the items' current state, after writing `artifacts` (in order)."""
        if self._store is None:
            return
        for item in items:
            self._items[item.index] = item
        if artifacts:
            self._writes.append(artifacts)
        self._pending(job)

    def job(self, job: pipeline_pb2.Job) -> None:
        """Records a change of the job's state."""
        if self._store is None:
            return
        self._states.append(job.state)
        self._pending(job)

    async def created(self, job: pipeline_pb2.Job, request_id: str) -> None:
        """Stores a new job; returns once it is committed."""
        if self._store is None:
            return
        event = self._next(self._template(job))
        event.job_state = job.state
        change = Change(job, self.sequence, request_id=request_id, on_commit=self._publisher([event]))
        await self._store.commit(change)

    async def finished(self, job: pipeline_pb2.Job, items: Sequence[pipeline_pb2.Item] = ()) -> None:
        """Records the end of the job (and the last items it changed); returns once it is committed.
        Items that had not ended are cancelled, in memory by the caller and in the store here."""
        if self._store is None:
            return
        self.flush()
        template = self._template(job)
        events = [self._item_event(template, item) for item in items]
        stored = [(event.sequence, event.item) for event in events]
        events.append(self._next(template))
        events[-1].finished.CopyFrom(without_items(job))
        change = Change(
            job, self.sequence, items=stored, cancel_unended=True, on_commit=self._publisher(events)
        )
        await self._store.commit(change)

    def progress(self, item_index: int, progress: Progress) -> None:
        if self._feeds is not None:
            self._feeds.report(self.job_id, item_index, progress)

    def _template(self, job: pipeline_pb2.Job) -> pipeline_pb2.JobEvent:
        """What every event of one batch carries: the job, the time, the counters after the batch."""
        return pipeline_pb2.JobEvent(job_id=self.job_id, time=now(), counts=counts_of(job))

    def _next(self, template: pipeline_pb2.JobEvent) -> pipeline_pb2.JobEvent:
        """A copy of `template` with the job's next sequence (one copy costs less than building it)."""
        self.sequence += 1
        event = pipeline_pb2.JobEvent()
        event.CopyFrom(template)
        event.sequence = self.sequence
        return event

    def _item_event(self, template: pipeline_pb2.JobEvent, item: pipeline_pb2.Item) -> pipeline_pb2.JobEvent:
        event = self._next(template)
        event.item.CopyFrom(item)  # the snapshot, stored and sent: nothing changes it from here on
        return event

    def _pending(self, job: pipeline_pb2.Job) -> None:
        if self._job is None:
            self._job = job
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Stores the changes of this loop iteration as one (now, if they are not stored yet)."""
        job, self._job = self._job, None
        if job is None or self._store is None:
            return
        if self.materialize is not None:
            job = self.materialize()
        template = self._template(job)
        events = []
        for state in self._states:
            events.append(self._next(template))
            events[-1].job_state = state
        stored = []
        for item in self._items.values():
            event = self._item_event(template, item)
            events.append(event)
            stored.append((event.sequence, event.item))
        change = Change(job, self.sequence, items=stored, artifacts=self._writes, on_error=self.broken)
        self._states, self._items, self._writes = [], {}, []
        change.on_commit = self._publisher(events)
        self._store.submit(change)

    def _publisher(self, events: list[pipeline_pb2.JobEvent]) -> Callable[[], None]:
        feeds, job_id = self._feeds, self.job_id

        def publish() -> None:
            if feeds is not None:
                for event in events:
                    feeds.publish(job_id, event)

        return publish
