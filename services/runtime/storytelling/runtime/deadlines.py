"""The current RPC's deadline, visible to core code without a gRPC context.

The runtime sets it for every incoming RPC; core code passes `remaining()` as the timeout of its
downstream calls, so a caller's deadline propagates through story, render and evaluation.
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

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


@contextlib.contextmanager
def scope(seconds: float | None) -> Iterator[None]:
    """Runs the block under a deadline `seconds` from now (None: no deadline). Nested scopes only shrink it."""
    if seconds is None:
        yield
        return
    new = time.monotonic() + seconds
    outer = _deadline.get()
    token = _deadline.set(new if outer is None else min(outer, new))
    try:
        yield
    finally:
        try:
            _deadline.reset(token)
        except ValueError:  # an async generator closed from another task's context
            pass
