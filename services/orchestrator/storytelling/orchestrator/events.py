"""Live events of jobs for their watchers, in memory.

A job's feed carries two kinds of events. Durable ones (job states, item changes, the end) are
published once committed, in sequence order; each watcher buffers them up to a limit, and a watcher
that falls further behind is told to catch up from the database instead, so a slow watcher never
holds back a job or grows memory. Stage progress (denoising steps, tokens) is never stored: the feed
keeps the latest progress of each item in a stage and a watcher receives only the latest value of
each, however fast the steps come: a step is a few numbers in a dict, made into an event only when a
watcher takes it.
"""

import asyncio
from collections import deque
from typing import NamedTuple

from storytelling.api.vocabulary import stage_outcome
from storytelling.v1 import pipeline_pb2

# Durable events a watcher may have buffered before it must catch up from the database.
DEFAULT_BACKLOG = 10_000


class Progress(NamedTuple):
    """The latest step of one item in a stage."""

    stage: int
    step: int
    total: int


def progress_event(item_index: int, progress: Progress) -> pipeline_pb2.JobEvent:
    return pipeline_pb2.JobEvent(
        progress=pipeline_pb2.StageProgress(
            item_index=item_index, stage=progress.stage, step=progress.step, total=progress.total
        )
    )


class Subscription:
    def __init__(self, backlog: int):
        self._backlog = backlog
        self._events: deque[pipeline_pb2.JobEvent] = deque()
        # The latest progress of each item that moved since `next`.
        self._progress: dict[int, Progress] = {}
        self._wakeup = asyncio.Event()
        self.overflowed = False

    def push(self, event: pipeline_pb2.JobEvent) -> None:
        if len(self._events) >= self._backlog:
            self.overflowed = True  # the watcher re-reads what it missed from the database
            self._events.clear()
        elif not self.overflowed:
            self._events.append(event)
        self._wakeup.set()

    def progress(self, item_index: int, progress: Progress) -> None:
        self._progress[item_index] = progress
        self._wakeup.set()

    async def next(self) -> tuple[list[pipeline_pb2.JobEvent], list[pipeline_pb2.JobEvent]]:
        """Waits for news; returns the durable events and the latest progress events since the last call.
        Check `overflowed` first: then the durable events are incomplete and must be read back."""
        await self._wakeup.wait()
        self._wakeup.clear()
        events = list(self._events)
        progress = [progress_event(index, latest) for index, latest in self._progress.items()]
        self._events.clear()
        self._progress.clear()
        return events, progress


class Feed:
    """One job's live events."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self._backlog = backlog
        self.subscriptions: set[Subscription] = set()
        # The latest progress of each item in a stage now.
        self.progress: dict[int, Progress] = {}

    def publish(self, event: pipeline_pb2.JobEvent) -> None:
        progress = self.progress.get(event.item.index) if event.HasField("item") else None
        if progress is not None and stage_outcome(event.item, progress.stage) != "running":
            del self.progress[event.item.index]  # the stage ended for this item: no more steps
        for subscription in self.subscriptions:
            subscription.push(event)

    def report(self, item_index: int, progress: Progress) -> None:
        self.progress[item_index] = progress
        for subscription in self.subscriptions:
            subscription.progress(item_index, progress)

    def progress_events(self) -> list[pipeline_pb2.JobEvent]:
        """The latest progress of every item in a stage, as events (for a watcher that starts)."""
        return [progress_event(index, progress) for index, progress in self.progress.items()]

    def subscribe(self) -> Subscription:
        subscription = Subscription(self._backlog)
        self.subscriptions.add(subscription)
        return subscription


class Feeds:
    """The feed of every job that runs or is watched; a feed goes away when neither is the case."""

    def __init__(self, backlog: int = DEFAULT_BACKLOG) -> None:
        self._backlog = backlog
        self._feeds: dict[str, Feed] = {}
        self._running: set[str] = set()

    def of(self, job_id: str) -> Feed:
        feed = self._feeds.get(job_id)
        if feed is None:
            feed = self._feeds[job_id] = Feed(self._backlog)
        return feed

    def running(self, job_id: str) -> Feed:
        """The feed of a job whose runner starts; it stays until `stopped`."""
        self._running.add(job_id)
        return self.of(job_id)

    def stopped(self, job_id: str) -> None:
        self._running.discard(job_id)
        self._forget_if_idle(job_id)

    def subscribe(self, job_id: str) -> Subscription:
        return self.of(job_id).subscribe()

    def publish(self, job_id: str, event: pipeline_pb2.JobEvent) -> None:
        """Hands a committed event to the job's watchers, if it has a feed (runs or is watched)."""
        if (feed := self._feeds.get(job_id)) is not None:
            feed.publish(event)

    def report(self, job_id: str, item_index: int, progress: Progress) -> None:
        if (feed := self._feeds.get(job_id)) is not None:
            feed.report(item_index, progress)

    def unsubscribe(self, job_id: str, subscription: Subscription) -> None:
        feed = self._feeds.get(job_id)
        if feed is not None:
            feed.subscriptions.discard(subscription)
            self._forget_if_idle(job_id)

    def _forget_if_idle(self, job_id: str) -> None:
        feed = self._feeds.get(job_id)
        if feed is not None and not feed.subscriptions and job_id not in self._running:
            del self._feeds[job_id]
