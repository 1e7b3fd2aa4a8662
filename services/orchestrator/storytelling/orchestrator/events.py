"""Wakes the watchers of a job when events are appended to its log."""

import asyncio


class Notifier:
    def __init__(self) -> None:
        self._waiting: dict[str, asyncio.Event] = {}

    def notify(self, job_id: str) -> None:
        event = self._waiting.pop(job_id, None)
        if event is not None:
            event.set()

    async def wait(self, job_id: str) -> None:
        """Returns at the next `notify(job_id)`. Callers read the log first, then wait without awaiting
        anything in between, so that no append can fall between the read and the wait."""
        await self._waiting.setdefault(job_id, asyncio.Event()).wait()
