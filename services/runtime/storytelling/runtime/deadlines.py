"""The current RPC's deadline, visible to core code without a gRPC context.

The runtime sets it for every incoming RPC; core code passes `remaining()` as the timeout of its
downstream calls, so a caller's deadline propagates through story, render and evaluation.
"""

from __future__ import annotations

import contextvars
import time

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("deadline", default=None)


def remaining(default: float | None = None) -> float | None:
    """Seconds left before the current deadline (never negative), else `default`.

    With both a deadline and a default, the smaller wins: a default acts as a per-call cap.
    """
    deadline = _deadline.get()
    if deadline is None:
        return default
    left = max(0.0, deadline - time.monotonic())
    return left if default is None else min(left, default)


def scope(seconds: float | None) -> Scope:
    """Runs the block under a deadline `seconds` from now (None: no deadline). Nested scopes only shrink it."""
    return Scope(seconds)


class Scope:
    """The context manager of `scope` (a class: the orchestrator enters one per stage call)."""

    __slots__ = ("_seconds", "_token")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._token: contextvars.Token[float | None] | None = None

    def __enter__(self) -> None:
        if self._seconds is None:
            return
        new = time.monotonic() + self._seconds
        outer = _deadline.get()
        self._token = _deadline.set(new if outer is None else min(outer, new))

    def __exit__(self, *exc: object) -> None:
        if self._token is None:
            return
        try:
            _deadline.reset(self._token)
        except ValueError:  # an async generator closed from another task's context
            pass
