"""Riding out a downstream service that restarts: items wait for it instead of failing.

When a call to a stage's service answers UNAVAILABLE (the service or its engine restarts, is being
rolled out or cannot be reached), that service's gate closes. Items that reach a closed gate wait,
without holding a slot of the stage's concurrency, and say so (`on_wait`). One of them at a time, the
probe, tries its call again with backoff, taking turns so that one item's own failing request cannot
keep the gate closed for the others; when a call gets through, the gate opens and every waiting item
goes on at once. An item gives up, with Unavailable, only when it has waited its job's `max_wait_s`.
Every other error passes through unchanged, to be retried or to fail the item as before.
"""

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from storytelling.runtime.errors import Unavailable

R = TypeVar("R")


@dataclass(frozen=True)
class WaitPolicy:
    # How long an item waits for an unavailable service, for jobs that do not set JobSpec.max_wait_s.
    max_wait_s: float = 3600.0
    # Backoff between probes: from `first_probe_s`, doubling, at most `max_probe_s` (with +-20% jitter).
    first_probe_s: float = 0.5
    max_probe_s: float = 5.0

    def probe_delay(self, failed_probes: int) -> float:
        delay = min(self.max_probe_s, self.first_probe_s * 2**failed_probes)
        return delay * random.uniform(0.8, 1.2)


@dataclass
class Outage:
    """Why and since when a service's gate is closed."""

    reason: str
    since: float  # time.time()


# Called when an item starts waiting: the outage and the item's deadline (time.time()).
OnWait = Callable[[Outage, float], None]
# The stage call; True when it is the probe of a closed gate (the item is waiting, not running).
Call = Callable[[bool], Awaitable[R]]


class ServiceGate:
    def __init__(self, service: str, policy: WaitPolicy):
        self.service = service
        self.policy = policy
        self.outage: Outage | None = None
        self._opened = asyncio.Event()
        self._opened.set()
        self._generation = 0  # bumped at every opening: a failure of an older call does not close it again
        self._probing = False
        self._probe_ended = asyncio.Event()
        self._waiters = 0
        self._failed_probes = 0

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    async def call(self, call: Call[R], *, max_wait_s: float, on_wait: OnWait) -> R:
        """The call's result once the service answers; Unavailable after waiting `max_wait_s`."""
        deadline: float | None = None
        probed_last = False
        try:
            while True:
                if self.is_open:
                    generation = self._generation
                    try:
                        result = await call(False)
                    except Unavailable as error:
                        self._close(str(error), generation)
                        continue
                    self._open()  # a call that started before the gate closed got through: it is back
                    return result
                outage = self.outage
                assert outage is not None
                if deadline is None:
                    deadline = time.time() + max_wait_s
                    self._waiters += 1
                    on_wait(outage, deadline)
                remaining = deadline - time.time()
                if remaining <= 0:
                    raise Unavailable(
                        f"waited {max_wait_s:g} s for {self.service} to come back: {outage.reason}"
                    ) from None
                if self._probing or (probed_last and self._waiters > 1):
                    probed_last = False  # after probing, let another waiting item take its turn
                    await self._wait_for_news(remaining)
                    continue
                self._probing, probed_last = True, True
                try:
                    await asyncio.sleep(min(self.policy.probe_delay(self._failed_probes), remaining))
                    if self.is_open or time.time() >= deadline:
                        continue
                    try:
                        result = await call(True)
                    except Unavailable as error:
                        self._failed_probes += 1
                        outage.reason = str(error)
                        continue
                    self._open()
                    return result
                finally:
                    self._probing = False
                    self._probe_ended.set()
                    self._probe_ended = asyncio.Event()
        finally:
            if deadline is not None:
                self._waiters -= 1

    async def _wait_for_news(self, remaining: float) -> None:
        """Until the gate opens, the probe ends (so this item may take over) or `remaining` passes."""
        waits = [asyncio.ensure_future(self._opened.wait()), asyncio.ensure_future(self._probe_ended.wait())]
        try:
            await asyncio.wait(waits, timeout=remaining, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _close(self, reason: str, generation: int) -> None:
        if generation != self._generation:
            return  # the call started before the gate last opened: its failure is old news
        if self.outage is None:
            self.outage = Outage(reason, time.time())
            self._opened.clear()
        else:
            self.outage.reason = reason

    def _open(self) -> None:
        if self.outage is not None:
            self.outage = None
            self._failed_probes = 0
            self._generation += 1
            self._opened.set()
