"""Retries with exponential backoff for stage failures that may pass: a slow engine or a full queue.

An unavailable service is not retried here: its gate (`gate.py`) makes items wait until it is back.
"""

import asyncio
import random
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, ResourceExhausted

R = TypeVar("R")


def retried(error: Exception) -> bool:
    """DeadlineExceeded and ResourceExhausted may pass by themselves (a slow engine, a full queue).
    Anything else, InvalidArgument above all, would fail again."""
    return isinstance(error, DeadlineExceeded | ResourceExhausted)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 30.0
    multiplier: float = 2.0
    # Backoffs are spread by +-jitter (a fraction) so that items failing together do not retry together.
    jitter: float = 0.2

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based)."""
        base = min(self.max_backoff_s, self.initial_backoff_s * self.multiplier ** (attempt - 1))
        return base * random.uniform(1 - self.jitter, 1 + self.jitter)


async def retry(call: Callable[[], Awaitable[R]], policy: RetryPolicy) -> R:
    """Runs `call` until it succeeds, fails with an error not `retried`, or has failed `max_attempts` times.

    The last error is raised.
    """
    attempt = 1
    while True:
        try:
            return await call()
        except Exception as error:
            if not retried(error) or attempt >= policy.max_attempts:
                raise
        await asyncio.sleep(policy.backoff(attempt))
        attempt += 1


async def within(deadline_s: float, call: Callable[[], Awaitable[R]]) -> R:
    """Awaits `call` for at most `deadline_s` (less if the current RPC's deadline is nearer), published
    through `storytelling.runtime.deadlines` so downstream calls carry it. Running past it is
    DeadlineExceeded, so it is retried."""
    seconds = deadlines.remaining(deadline_s)
    assert seconds is not None
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    keeper = _keepers.get(loop)
    if keeper is None:
        keeper = _keepers[loop] = _Deadlines()
    bounded = _Bounded(task, loop.time() + seconds)
    keeper.add(bounded)
    try:
        with deadlines.scope(seconds):
            return await call()
    except asyncio.CancelledError:
        # Our own cancellation, unless the task was also cancelled from outside (then it stays cancelled).
        if bounded.expired and task.uncancel() <= bounded.cancelling:
            raise DeadlineExceeded(f"no answer within the deadline of {round(seconds, 2):g} s") from None
        raise
    finally:
        keeper.remove(bounded)


class _Bounded:
    """A call in flight under a deadline (loop time): its task is cancelled when the deadline passes."""

    __slots__ = ("_task", "cancelling", "expired", "when")

    def __init__(self, task: asyncio.Task[Any], when: float) -> None:
        self._task, self.when = task, when
        self.cancelling, self.expired = task.cancelling(), False

    def expire(self) -> None:
        self.expired = True
        self._task.cancel()


class _Deadlines:
    """The deadlines of one event loop's calls in flight, enforced by one timer at the earliest of them.
    A timer per call (as asyncio.timeout sets) cost more than an instant stage call: asyncio keeps its
    timers in a heap of Python objects. Here a call costs a dict insert and delete; a call that ends
    leaves the timer as it is, and the timer, when it fires, expires what is due and moves on to the
    earliest deadline left."""

    def __init__(self) -> None:  # holds no reference to its loop, the key of `_keepers`
        self._calls: dict[_Bounded, None] = {}
        self._timer: asyncio.TimerHandle | None = None

    def add(self, call: _Bounded) -> None:
        self._calls[call] = None
        if self._timer is None or call.when < self._timer.when():
            self._schedule(call.when)

    def remove(self, call: _Bounded) -> None:
        self._calls.pop(call, None)

    def _schedule(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_at(when, self._expire)

    def _expire(self) -> None:
        self._timer = None
        now, earliest = asyncio.get_running_loop().time(), None
        for call in list(self._calls):
            if call.when <= now:
                del self._calls[call]
                call.expire()
            elif earliest is None or call.when < earliest:
                earliest = call.when
        if earliest is not None:
            self._schedule(earliest)


_keepers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Deadlines] = weakref.WeakKeyDictionary()
