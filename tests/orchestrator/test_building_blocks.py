"""The staged pipeline, retries, deadlines, seeds and the runner's counters on their own."""

import asyncio
from collections import Counter

import pytest

from storytelling.orchestrator.gate import ServiceGate, WaitPolicy
from storytelling.orchestrator.pipeline import PipelineStage, run_pipeline
from storytelling.orchestrator.retry import RetryPolicy, retry, within
from storytelling.orchestrator.runner import tally, totals_of
from storytelling.orchestrator.seeds import derive_seed
from storytelling.runtime import deadlines
from storytelling.runtime.errors import (
    AlreadyExists,
    Cancelled,
    DeadlineExceeded,
    FailedPrecondition,
    Internal,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    ServiceError,
    Unavailable,
    Unimplemented,
)
from storytelling.v1 import common_pb2, pipeline_pb2

ALL, STORY, RENDER, EVALUATE = (
    pipeline_pb2.STAGE_UNSPECIFIED,
    pipeline_pb2.STAGE_STORY,
    pipeline_pb2.STAGE_RENDER,
    pipeline_pb2.STAGE_EVALUATE,
)


async def test_items_flow_through_stages_in_order_and_failed_items_stop():
    visits: list[tuple[str, int]] = []
    running = {"a": 0, "b": 0}
    peak = {"a": 0, "b": 0}

    def stage(name: str, concurrency: int, passes) -> PipelineStage[int]:
        async def run(item: int) -> bool:
            running[name] += 1
            peak[name] = max(peak[name], running[name])
            await asyncio.sleep(0.001 * (item % 3))
            running[name] -= 1
            visits.append((name, item))
            return passes(item)

        return PipelineStage(name, concurrency, run)

    await run_pipeline(range(20), [stage("a", 3, lambda i: i % 4 != 0), stage("b", 2, lambda i: True)])

    assert sorted(i for name, i in visits if name == "a") == list(range(20))
    assert sorted(i for name, i in visits if name == "b") == [i for i in range(20) if i % 4]
    assert all(visits.index(("a", i)) < visits.index(("b", i)) for i in range(20) if i % 4)
    assert peak == {"a": 3, "b": 2}


async def test_a_bug_in_a_stage_surfaces_instead_of_hanging():
    async def broken(item: int) -> bool:
        raise KeyError(item)

    with pytest.raises(ExceptionGroup) as raised:
        await asyncio.wait_for(run_pipeline(range(3), [PipelineStage("x", 2, broken)]), 5)
    assert raised.group_contains(KeyError)


async def test_items_are_taken_only_as_the_first_stage_has_room():
    produced = 0

    async def items():
        nonlocal produced
        for item in range(200):
            produced += 1
            yield item

    async def slow(item: int) -> bool:
        await asyncio.sleep(0.01)
        assert produced <= item + 2 * 2 + 2, "items were taken far ahead of the first stage"
        return True

    await run_pipeline(items(), [PipelineStage("slow", 2, slow)])
    assert produced == 200


FAST = RetryPolicy(max_attempts=4, initial_backoff_s=0.001, max_backoff_s=0.004)


@pytest.mark.parametrize("transient", [DeadlineExceeded("slow"), ResourceExhausted("full")])
async def test_transient_errors_are_retried_until_the_attempts_run_out(transient):
    attempts = 0

    async def call() -> str:
        """Fails more often than FAST allows, then answers: a retry that never gives up ends too."""
        nonlocal attempts
        attempts += 1
        if attempts <= 5:
            raise transient
        return "answered"

    with pytest.raises(type(transient)):
        await retry(call, FAST)
    assert attempts == 4


@pytest.mark.parametrize(
    "final",
    [
        InvalidArgument("bad", field="prompt"),
        NotFound("no such pool"),
        AlreadyExists("taken"),
        FailedPrecondition("not ready"),
        Unimplemented("no streaming"),
        Internal("a bug in the painter"),
        Cancelled("client went away"),
        ServiceError("unknown"),
        KeyError("not a service error"),
        Unavailable("down"),  # not retried here: the service's gate waits for it instead
    ],
    ids=lambda error: getattr(error, "code", type(error).__name__),
)
async def test_errors_that_are_not_transient_are_raised_at_the_first_attempt(final):
    """INTERNAL above all: a bug in a stage would fail again, so retrying only multiplies the load."""
    attempts = 0

    async def call() -> None:
        nonlocal attempts
        attempts += 1
        raise final

    with pytest.raises(type(final)):
        await retry(call, FAST)
    assert attempts == 1


async def test_success_ends_retrying():
    outcomes: list[Exception | str] = [DeadlineExceeded("slow"), ResourceExhausted("full"), "ok", "again"]
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert await retry(flaky, FAST) == "ok"
    assert calls == 3


def test_backoff_doubles_up_to_its_cap_with_bounded_jitter():
    policy = RetryPolicy(initial_backoff_s=1.0, max_backoff_s=5.0, jitter=0.2)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 5.0), (9, 5.0)]:
        waits = [policy.backoff(attempt) for _ in range(200)]
        assert base * 0.8 <= min(waits) and max(waits) <= base * 1.2
        assert max(waits) - min(waits) > 0, "no jitter"


async def test_within_bounds_a_call_by_the_stage_deadline_and_any_nearer_rpc_deadline():
    seen: list[float | None] = []

    async def slow() -> None:
        seen.append(deadlines.remaining())
        await asyncio.sleep(1)

    with pytest.raises(DeadlineExceeded, match="0.02 s"):
        await within(0.02, slow)
    with deadlines.scope(0.03), pytest.raises(DeadlineExceeded, match="0.03 s"):
        await within(10.0, slow)
    assert seen[0] == pytest.approx(0.02, abs=0.01) and seen[1] == pytest.approx(0.03, abs=0.01)
    assert deadlines.remaining() is None  # every scope ended with its call
    await asyncio.sleep(0.05)  # a deadline that passed after its call ended does not cancel the task


async def test_calls_in_flight_each_keep_their_own_deadline():
    async def sleep(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    # A long deadline first, then a nearer one: the nearer one still expires on time.
    results = await asyncio.gather(
        within(5.0, lambda: sleep(0.2)),
        within(0.02, lambda: sleep(1.0)),
        within(0.05, lambda: sleep(0.01)),
        return_exceptions=True,
    )
    assert results[0] == 0.2 and isinstance(results[1], DeadlineExceeded) and results[2] == 0.01
    started = asyncio.get_running_loop().time()
    with pytest.raises(DeadlineExceeded):  # after the timer fired: the next deadline is enforced too
        await within(0.03, lambda: sleep(1.0))
    assert asyncio.get_running_loop().time() - started < 0.5


async def test_every_deadline_in_flight_is_enforced_not_only_the_earliest():
    """One timer serves every call: when it fires for the first deadline it must move on to the next."""

    async def sleep(seconds: float) -> float:
        await asyncio.sleep(seconds)
        return seconds

    results = await asyncio.gather(
        within(0.02, lambda: sleep(2.0)), within(0.05, lambda: sleep(2.0)), return_exceptions=True
    )
    assert [type(result) for result in results] == [DeadlineExceeded, DeadlineExceeded]


class SteppedClockLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock moves only when the test sets it."""

    now = 1000.0

    def time(self) -> float:
        return self.now


def test_calls_in_flight_share_one_timer(monkeypatch):
    """A timer per call would cost more than an instant stage call: one timer, at the earliest deadline,
    serves every call of the loop, those due at the same time included."""
    loop = SteppedClockLoop()
    timers: list[float] = []
    call_at = loop.call_at

    def counting(when, callback, *args, **kwargs):
        timers.append(when)
        return call_at(when, callback, *args, **kwargs)

    monkeypatch.setattr(loop, "call_at", counting)

    async def twenty_calls() -> list[int]:
        calls = (within(10.0 + n // 2, lambda n=n: asyncio.sleep(0, n)) for n in range(20))
        return await asyncio.gather(*calls)

    try:
        assert loop.run_until_complete(twenty_calls()) == list(range(20))
    finally:
        loop.close()
    assert timers == [1010.0]


def test_a_call_that_ended_before_its_deadline_leaves_its_task_alone():
    loop = SteppedClockLoop()

    async def answered_then_past_the_deadline() -> str:
        answer = await within(0.5, lambda: asyncio.sleep(0, "answered"))
        loop.now = 1001.0  # the deadline passes: the timer fires with no call left to cut
        for _ in range(10):
            await asyncio.sleep(0)
        return answer

    try:
        assert loop.run_until_complete(answered_then_past_the_deadline()) == "answered"
    finally:
        loop.close()


def test_the_deadline_in_the_error_is_rounded_to_hundredths():
    loop = SteppedClockLoop()

    async def past_the_deadline() -> None:
        loop.now = 1000.5
        for _ in range(10):
            await asyncio.sleep(0)

    try:
        with pytest.raises(DeadlineExceeded, match=r"^no answer within the deadline of 0\.03 s$"):
            loop.run_until_complete(within(0.034, past_the_deadline))
    finally:
        loop.close()


def test_a_call_is_past_its_deadline_the_moment_the_clock_reaches_it():
    loop = SteppedClockLoop()

    async def until_the_deadline() -> str:
        loop.now = 1000.5  # exactly the deadline: the timer fires, and the call is due
        for _ in range(100):
            await asyncio.sleep(0)
        return "ran past its deadline"

    try:
        with pytest.raises(DeadlineExceeded, match="0.5 s"):
            loop.run_until_complete(within(0.5, until_the_deadline))
    finally:
        loop.close()


async def test_a_task_cancelled_from_outside_within_a_deadline_stays_cancelled():
    started = asyncio.Event()

    async def forever() -> None:
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(within(10.0, forever))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def test_seeds_are_stable_distinct_and_non_negative():
    seeds = {derive_seed(7, index, stage) for index in range(100) for stage in ("story", "image")}
    assert len(seeds) == 200 and all(0 <= seed < 2**63 for seed in seeds)
    assert derive_seed(7, 3, "story") == derive_seed(7, 3, "story") != derive_seed(8, 3, "story")
    assert derive_seed(7, 3, "story") == 7797837576262698484  # fixed forever: reruns of old jobs reproduce


QUICK = WaitPolicy(max_wait_s=5.0, first_probe_s=0.005, max_probe_s=0.01)


class Service:
    """A downstream service that is down until `up` is set, counting calls and calls at once."""

    def __init__(self) -> None:
        self.up = asyncio.Event()
        self.calls = self.in_flight = self.most_in_flight = 0
        self.refuse: set[int] = set()  # items whose own calls stay UNAVAILABLE

    async def __call__(self, item: int) -> int:
        self.calls += 1
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0.001)
            if not self.up.is_set() or item in self.refuse:
                raise Unavailable("render answered UNAVAILABLE: restarting")
            return item
        finally:
            self.in_flight -= 1


async def test_a_closed_gate_lets_one_probe_through_at_a_time_and_opens_for_everyone():
    gate, service = ServiceGate("render", QUICK), Service()
    waits: list[tuple[int, str]] = []

    async def item(index: int) -> int:
        def on_wait(outage, deadline) -> None:
            waits.append((index, outage.reason))

        return await gate.call(lambda probe: service(index), max_wait_s=5.0, on_wait=on_wait)

    tasks = [asyncio.create_task(item(i)) for i in range(20)]
    async with asyncio.timeout(10):  # every item's first call fails and it waits (slow on a loaded machine)
        while len(waits) < 20:
            await asyncio.sleep(0.01)
    assert not gate.is_open and gate.outage is not None and "restarting" in gate.outage.reason
    assert sorted(index for index, _ in waits) == list(range(20)), "every item says it waits, once"
    calls_while_down = service.calls
    service.most_in_flight = 0
    await asyncio.sleep(0.2)
    assert service.most_in_flight == 1, "more than one probe at once while the service was down"
    assert service.calls - calls_while_down < 60, "probes back off"
    service.up.set()
    assert await asyncio.wait_for(asyncio.gather(*tasks), 1) == list(range(20))
    assert gate.is_open and gate.outage is None


async def test_an_item_whose_own_calls_fail_does_not_keep_the_gate_closed_for_the_others():
    gate, service = ServiceGate("render", QUICK), Service()
    service.up.set()
    service.refuse = {0}

    async def item(index: int, max_wait_s: float) -> int:
        return await gate.call(lambda probe: service(index), max_wait_s=max_wait_s, on_wait=lambda *_: None)

    stuck = asyncio.create_task(item(0, 0.3))
    await asyncio.sleep(0.02)  # item 0 closed the gate and probes
    assert await asyncio.wait_for(asyncio.gather(*(item(i, 5.0) for i in range(1, 5))), 1) == [1, 2, 3, 4]
    with pytest.raises(Unavailable, match=r"waited 0.3 s for render to come back: .*restarting"):
        await stuck


async def test_other_errors_pass_through_a_gate():
    gate = ServiceGate("story", QUICK)

    async def bad(probe: bool) -> None:
        raise InvalidArgument("too long", field="prompt")

    with pytest.raises(InvalidArgument):
        await gate.call(bad, max_wait_s=1.0, on_wait=lambda *_: None)
    assert gate.is_open


def test_an_item_counts_once_for_the_job_and_once_per_stage_it_reached():
    stages = (STORY, RENDER, EVALUATE)
    story = common_pb2.Story(id="s-0", text="A story.")
    succeeded = pipeline_pb2.Item(state=pipeline_pb2.ITEM_STATE_SUCCEEDED, stage=EVALUATE, story=story)
    assert tally(succeeded, stages) == (
        (ALL, "succeeded"),
        (STORY, "done"),
        (RENDER, "done"),
        (EVALUATE, "done"),
    )
    failed = pipeline_pb2.Item(state=pipeline_pb2.ITEM_STATE_FAILED, stage=RENDER, story=story)
    assert tally(failed, stages) == ((ALL, "failed"), (STORY, "done"), (RENDER, "failed"))
    waiting = pipeline_pb2.Item(state=pipeline_pb2.ITEM_STATE_WAITING, stage=RENDER, story=story)
    assert tally(waiting, stages) == ((STORY, "done"), (RENDER, "waiting"))
    assert tally(pipeline_pb2.Item(state=pipeline_pb2.ITEM_STATE_PENDING), stages) == ()


def test_a_resumed_job_counts_on_from_the_counters_it_was_stored_with():
    job = pipeline_pb2.Job(items_succeeded=3, items_failed=1)
    job.stages.add(stage=STORY, done=5, failed=1)
    job.stages.add(stage=RENDER, done=3, running=1, waiting=1)
    assert totals_of(job) == Counter(
        {
            (ALL, "succeeded"): 3,
            (ALL, "failed"): 1,
            (STORY, "done"): 5,
            (STORY, "failed"): 1,
            (RENDER, "done"): 3,
            (RENDER, "running"): 1,
            (RENDER, "waiting"): 1,
        }
    )
