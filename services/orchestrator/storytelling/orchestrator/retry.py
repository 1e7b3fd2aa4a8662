"""Retries with exponential backoff for stage failures that may pass: a slow engine or a full queue.

An unavailable service is not retried here: its gate (`gate.py`) makes items wait until it is back.
"""

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

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
    DeadlineExceeded, so it is retried.

    The task is cancelled at the deadline by one timer, as asyncio.timeout does, without its state
    machine (which cost more than an instant stage call)."""
    seconds = deadlines.remaining(deadline_s)
    assert seconds is not None
    task = asyncio.current_task()
    assert task is not None
    expiry = _Expiry(task)
    timer = asyncio.get_running_loop().call_later(seconds, expiry.expire)
    try:
        with deadlines.scope(seconds):
            return await call()
    except asyncio.CancelledError:
        # Our own cancellation, unless the task was also cancelled from outside (then it stays cancelled).
        if expiry.expired and task.uncancel() <= expiry.cancelling:
            raise DeadlineExceeded(f"no answer within the deadline of {round(seconds, 2):g} s") from None
        raise
    finally:
        timer.cancel()


class _Expiry:
    __slots__ = ("_task", "cancelling", "expired")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task, self.cancelling, self.expired = task, task.cancelling(), False

    def expire(self) -> None:
        self.expired = True
        self._task.cancel()
