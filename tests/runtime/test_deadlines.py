"""The current RPC's deadline as core code sees it: `remaining()` and nested `scope()`s."""

from __future__ import annotations

import asyncio

from storytelling.runtime import deadlines


def test_without_a_deadline_the_default_is_returned_as_is():
    assert deadlines.remaining() is None
    assert deadlines.remaining(3.0) == 3.0


def test_with_a_deadline_and_a_default_the_smaller_wins():
    with deadlines.scope(10.0):
        assert deadlines.remaining(2.0) == 2.0  # the default caps a long deadline
        assert 9.0 < deadlines.remaining(100.0) <= 10.0  # the deadline caps a long default
        assert 9.0 < deadlines.remaining() <= 10.0
    assert deadlines.remaining() is None  # the scope is gone with its block


def test_a_deadline_in_the_past_leaves_zero_never_a_negative_time():
    with deadlines.scope(-5.0):
        assert deadlines.remaining() == 0.0
        assert deadlines.remaining(2.0) == 0.0


def test_nested_scopes_only_shrink_the_deadline():
    with deadlines.scope(1.0):
        with deadlines.scope(60.0):
            assert 0.0 < deadlines.remaining() <= 1.0
        with deadlines.scope(0.5):
            assert 0.0 < deadlines.remaining() <= 0.5
        assert 0.5 < deadlines.remaining() <= 1.0


def test_a_scope_of_none_keeps_the_outer_deadline():
    with deadlines.scope(1.0), deadlines.scope(None):
        assert 0.0 < deadlines.remaining() <= 1.0


async def test_each_task_sees_the_deadline_of_its_own_rpc():
    async def rpc(seconds: float) -> float | None:
        with deadlines.scope(seconds):
            await asyncio.sleep(0)
            return deadlines.remaining()

    short, long = await asyncio.gather(rpc(1.0), rpc(30.0))
    assert 0.0 < short <= 1.0 and 29.0 < long <= 30.0
