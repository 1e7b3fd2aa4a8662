"""Supervision of the local stack's processes: a child that exits is started again, with backoff.

The policy is Kubernetes' restartPolicy Always with its CrashLoopBackOff: the first restart comes after
`initial_backoff_s`, each further one after twice as long up to `max_backoff_s`, and the delay resets once
a child has stayed up `stable_after_s`. Unlike Kubernetes, which backs off forever, a local stack gives up
on a crash loop (`max_restarts` within `window_s`) and stops, saying which child and why: a laptop user
should read the reason, not watch a process restart all night. Restarts run on worker threads (an
engine takes minutes to load), so one slow restart never delays noticing another crash. Those threads
live as long as the supervisor: a child started with a parent-death signal (PR_SET_PDEATHSIG) gets it
when the *thread* that started it ends, so a thread per restart would stop the child it just started.

Every crash and restart is logged and recorded in the stack's status file, which `storytelling stack
status` reads.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from storytelling.api.stackstatus import ChildStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestartPolicy:
    initial_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    # A child up this long is healthy again: its next crash restarts after initial_backoff_s.
    stable_after_s: float = 120.0
    # This many restarts of one child within window_s is a crash loop: the stack stops.
    max_restarts: int = 5
    window_s: float = 600.0

    def backoff(self, consecutive: int) -> float:
        """Seconds before restart number `consecutive` (1-based) since the child was last stable."""
        return min(self.max_backoff_s, self.initial_backoff_s * 2 ** (consecutive - 1))


DEFAULT_POLICY = RestartPolicy()


@dataclass
class Child:
    """A supervised process: `process()` is the one running now; `restart()` starts a new one on the same
    ports and returns once it is started (it may take minutes: it runs on its own thread)."""

    name: str
    process: Callable[[], subprocess.Popen]
    restart: Callable[[], None]
    address: str = ""


@dataclass
class _State:
    status: ChildStatus
    started: float  # monotonic
    consecutive: int = 0  # restarts since the child was last stable
    restart_times: list[float] = field(default_factory=list)
    next_start: float | None = None
    restarting: Future[None] | None = None


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with status {code}"


class Supervisor:
    def __init__(
        self,
        children: list[Child],
        policy: RestartPolicy = DEFAULT_POLICY,
        *,
        on_change: Callable[[list[ChildStatus]], None] = lambda statuses: None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._children = {child.name: child for child in children}
        self._policy, self._on_change, self._clock = policy, on_change, clock
        now = clock()
        self._states = {
            child.name: _State(
                ChildStatus(
                    name=child.name,
                    state="running",
                    pid=child.process().pid,
                    address=child.address,
                    started_at=time.time(),
                ),
                started=now,
            )
            for child in children
        }
        self._lock = threading.Lock()
        self._restarts = ThreadPoolExecutor(max(1, len(children)), thread_name_prefix="restart")

    def close(self) -> None:
        """Waits for restarts under way; call once the children are stopped."""
        self._restarts.shutdown(wait=True, cancel_futures=True)

    def statuses(self) -> list[ChildStatus]:
        with self._lock:
            return [state.status for state in self._states.values()]

    def check(self) -> str | None:
        """Looks at every child once: records exits, starts restarts that are due. Returns why the stack
        must stop (a crash loop), or None."""
        changed = False
        reason = None
        now = self._clock()
        with self._lock:
            for name, state in self._states.items():
                child, status = self._children[name], state.status
                if status.state == "restarting":
                    changed |= self._restart_finished(child, state, now)
                elif status.state == "backoff" and state.next_start is not None and now >= state.next_start:
                    self._start_restart(child, state)
                    changed = True
                elif status.state == "running":
                    if state.consecutive and now - state.started >= self._policy.stable_after_s:
                        state.consecutive = 0
                    code = child.process().poll()
                    if code is not None:
                        reason = self._crashed(child, state, code, now) or reason
                        changed = True
        if changed:
            self._on_change(self.statuses())
        return reason

    def run(self, stop: threading.Event, interval_s: float = 0.5) -> str | None:
        """Checks every `interval_s` until `stop` is set (returns None) or a crash loop (returns why)."""
        while not stop.wait(interval_s):
            if (reason := self.check()) is not None:
                return reason
        return None

    def _crashed(self, child: Child, state: _State, code: int, now: float) -> str | None:
        status = state.status
        ran = now - state.started
        status.last_exit = describe_exit(code)
        status.last_exit_at = time.time()
        state.restart_times = [t for t in state.restart_times if now - t < self._policy.window_s]
        if len(state.restart_times) >= self._policy.max_restarts:
            status.state = "crash-loop"
            reason = (
                f"{child.name} {status.last_exit} after {ran:.0f} s and has been restarted "
                f"{len(state.restart_times)} times in {self._policy.window_s:.0f} s: crash loop; see its log"
            )
            logger.error("%s", reason)
            return reason
        state.consecutive += 1
        delay = self._policy.backoff(state.consecutive)
        state.next_start = now + delay
        status.state = "backoff"
        status.next_start_at = time.time() + delay
        logger.warning(
            "%s %s after %.0f s; restart %d in %.1f s",
            child.name,
            status.last_exit,
            ran,
            status.restarts + 1,
            delay,
        )
        return None

    def _start_restart(self, child: Child, state: _State) -> None:
        state.status.state = "restarting"
        state.status.next_start_at = None
        state.restart_times.append(self._clock())
        state.restarting = self._restarts.submit(child.restart)

    def _restart_finished(self, child: Child, state: _State, now: float) -> bool:
        if state.restarting is None or not state.restarting.done():
            return False
        error = state.restarting.exception()
        state.restarting = None
        status = state.status
        status.restarts += 1
        state.started = now
        if error is not None:
            status.state = "backoff"
            status.last_exit = f"could not start: {error}"
            status.last_exit_at = time.time()
            state.consecutive += 1
            delay = self._policy.backoff(state.consecutive)
            state.next_start = now + delay
            status.next_start_at = time.time() + delay
            logger.error("%s %s; next try in %.1f s", child.name, status.last_exit, delay)
            return True
        status.state = "running"
        status.pid = child.process().pid
        status.started_at = time.time()
        logger.warning("%s restarted (pid %d, restart %d)", child.name, status.pid, status.restarts)
        return True
