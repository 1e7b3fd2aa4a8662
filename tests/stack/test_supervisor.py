"""The supervisor on real child processes, with a clock the test moves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storytelling.api.stackstatus import StackStatus, read_status, write_status
from storytelling.stack.supervisor import Child, RestartPolicy, Supervisor, describe_exit

POLICY = RestartPolicy(
    initial_backoff_s=1.0, max_backoff_s=4.0, stable_after_s=30.0, max_restarts=3, window_s=100
)


class Sleeper:
    """A child process that sleeps until killed; restart() starts a fresh one."""

    def __init__(self) -> None:
        self.started = 0
        self.proc = self._spawn()

    def _spawn(self) -> subprocess.Popen:
        self.started += 1
        return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])

    def restart(self) -> None:
        self.proc = self._spawn()

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.kill()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeper():
    child = Sleeper()
    yield child
    child.stop()


def settle(supervisor: Supervisor, name: str, state: str, timeout: float = 10.0) -> None:
    """Checks until the child reaches `state` (restarts run on threads)."""
    deadline = time.monotonic() + timeout
    while next(s for s in supervisor.statuses() if s.name == name).state != state:
        assert time.monotonic() < deadline, f"{name} never became {state}: {supervisor.statuses()}"
        supervisor.check()
        time.sleep(0.01)


def test_a_killed_child_is_restarted_after_a_backoff_that_doubles_then_resets(sleeper: Sleeper):
    clock, changes = Clock(), []
    supervisor = Supervisor(
        [Child("render", lambda: sleeper.proc, sleeper.restart, "127.0.0.1:1")],
        POLICY,
        on_change=changes.append,
        clock=clock,
    )
    assert supervisor.check() is None and not changes, "nothing to report while it runs"

    first_pid = sleeper.proc.pid
    sleeper.kill()
    supervisor.check()
    status = supervisor.statuses()[0]
    assert (status.state, status.last_exit) == ("backoff", "killed by SIGKILL")
    assert changes, "the crash was reported"
    clock.now += 0.9
    supervisor.check()
    assert supervisor.statuses()[0].state == "backoff", "restarted before its backoff"
    clock.now += 0.2
    settle(supervisor, "render", "running")
    status = supervisor.statuses()[0]
    assert status.restarts == 1 and status.pid == sleeper.proc.pid != first_pid

    sleeper.kill()  # again, soon after: twice the backoff
    supervisor.check()
    clock.now += 1.5
    supervisor.check()
    assert supervisor.statuses()[0].state == "backoff"
    clock.now += 0.6
    settle(supervisor, "render", "running")

    clock.now += POLICY.stable_after_s  # up long enough: the next crash restarts after 1 s again
    supervisor.check()
    sleeper.kill()
    supervisor.check()
    clock.now += 1.1
    settle(supervisor, "render", "running")
    assert supervisor.statuses()[0].restarts == 3


def test_a_crash_loop_stops_the_stack_with_the_reason(sleeper: Sleeper):
    clock = Clock()
    supervisor = Supervisor([Child("story", lambda: sleeper.proc, sleeper.restart)], POLICY, clock=clock)
    for _ in range(POLICY.max_restarts):
        sleeper.kill()
        assert supervisor.check() is None
        clock.now += POLICY.max_backoff_s
        settle(supervisor, "story", "running")
    sleeper.kill()
    reason = supervisor.check()
    assert reason is not None and reason.startswith("story killed by SIGKILL after ")
    assert "restarted 3 times in 100 s: crash loop" in reason
    assert supervisor.statuses()[0].state == "crash-loop"


def test_a_child_that_cannot_start_is_tried_again(sleeper: Sleeper):
    clock, attempts = Clock(), []

    def broken_restart() -> None:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("port 50052 is taken")
        sleeper.restart()

    supervisor = Supervisor([Child("render", lambda: sleeper.proc, broken_restart)], POLICY, clock=clock)
    sleeper.kill()
    supervisor.check()
    clock.now += 1.1
    supervisor.check()
    assert supervisor.statuses()[0].state == "restarting"
    settle(supervisor, "render", "backoff")
    assert supervisor.statuses()[0].last_exit == "could not start: port 50052 is taken"
    clock.now += 2.1
    settle(supervisor, "render", "running")
    assert len(attempts) == 2


def test_exit_descriptions_and_the_status_file_round_trip(tmp_path: Path, sleeper: Sleeper):
    assert describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
    supervisor = Supervisor([Child("evaluation", lambda: sleeper.proc, sleeper.restart)], POLICY)
    status = StackStatus(pid=os.getpid(), state="running", children=supervisor.statuses())
    write_status(tmp_path / "status.json", status)
    assert read_status(tmp_path / "status.json") == status
    assert read_status(tmp_path / "missing.json") is None
