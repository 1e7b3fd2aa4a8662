"""`storytelling stack up|down|status|fetch|plan`: delegates to `storytelling.stack.local`, the local
stack launcher.

The launcher ships with the services distribution, not with this SDK, so it is looked up only when
these commands run. `up --profile NAME` runs `python -m storytelling.stack.local up` with that model
profile in the foreground, or detached in its own process group with a pid file that `down` uses to stop
it (SIGTERM, then SIGKILL). `status` reads the launcher's status file: each process's state, restarts and
last exit. `fetch` downloads a profile's models; `plan` prints its memory plan.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from storytelling.cli.connection import channel_options
from storytelling.api.stackstatus import ChildStatus, default_status_path, read_status
from storytelling.client import Client, UnavailableError

MODULE = "storytelling.stack.local"


def _state_dir() -> Path:
    return Path(os.environ.get("STORYTELLING_CACHE_DIR", Path.home() / ".cache" / "storytelling"))


DEFAULT_PROFILE = "offline"  # the embedded default; deploy/profiles has the others


def add_parser(commands: argparse._SubParsersAction, common: argparse.ArgumentParser) -> None:
    stack = commands.add_parser("stack", help="start or stop the local stack of services")
    actions = stack.add_subparsers(dest="action", required=True, metavar="{up,down,status,fetch,plan}")
    up = actions.add_parser("up", parents=[common], help="start every service on this machine")
    _profile_argument(up)
    up.add_argument("--detach", action="store_true", help="run in the background and return once it serves")
    up.add_argument(
        "--wait", type=float, default=600.0, help="seconds to wait for the orchestrator (--detach)"
    )
    up.add_argument("--pid-file", type=Path, default=_state_dir() / "stack.pid")
    up.add_argument("--log-file", type=Path, default=_state_dir() / "stack.log")
    up.add_argument(
        "stack_args", nargs=argparse.REMAINDER, help=f"arguments passed on to {MODULE} (after --)"
    )
    up.set_defaults(func=up_command)
    down = actions.add_parser("down", help="stop a stack started with --detach")
    down.add_argument("--pid-file", type=Path, default=_state_dir() / "stack.pid")
    down.add_argument(
        "--grace", type=float, default=30.0, help="seconds to wait after SIGTERM before SIGKILL"
    )
    down.set_defaults(func=down_command)
    status = actions.add_parser("status", help="show each process of the local stack: state, restarts, exits")
    status.add_argument(
        "--status-file", type=Path, default=default_status_path(), help="the launcher's --status-file"
    )
    status.set_defaults(func=status_command)
    fetch = actions.add_parser("fetch", help="download (or build) every model of a profile")
    plan = actions.add_parser("plan", help="validate a profile and print its GPU memory plan")
    for action in (fetch, plan):
        _profile_argument(action)
        action.set_defaults(func=delegate_command)


def _profile_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=DEFAULT_PROFILE,
        help="model profile: offline (default), cpu-engines, gpu-24gb, gpu-80gb, remote, or a file path",
    )


class StackError(Exception):
    """The local stack could not be started or stopped; the message says why."""


def _require_launcher() -> None:
    try:
        found = importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        raise StackError(
            f"the local stack needs the StorytellingPainter services ({MODULE} is not importable); "
            "install them (`make venv` in the repository) or start the services yourself"
        )


@contextlib.contextmanager
def embedded_stack(data_dir: Path, profile: str = DEFAULT_PROFILE) -> Iterator[str]:
    """Runs the local stack of `profile` (free ports) in this process's lifetime; yields the orchestrator's
    address. Used by `paint --embedded` / `paint --profile`, which `make run` calls."""
    _require_launcher()
    local = importlib.import_module(MODULE)
    print(f"starting the local stack (profile {profile}; logs in {data_dir / 'logs'})...", file=sys.stderr)
    # SIGTERM unwinds like Ctrl-C, so the stack is stopped on the way out instead of left running.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    options = local.StackOptions(data_dir=data_dir, profile=profile, ephemeral_ports=True)
    try:
        with local.LocalStack(options) as running:
            try:
                address = running.up()["orchestrator"]
            except (RuntimeError, TimeoutError) as error:  # an engine or service died while starting
                raise StackError(f"the local stack did not start: {error}") from None
            yield address
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _command(args: argparse.Namespace) -> list[str]:
    _require_launcher()
    extra = args.stack_args[1:] if args.stack_args[:1] == ["--"] else args.stack_args
    return [sys.executable, "-m", MODULE, "up", "--profile", args.profile, *extra]


def delegate_command(args: argparse.Namespace) -> int:
    """`fetch` and `plan` run in the launcher, which owns profiles and models."""
    _require_launcher()
    return subprocess.run([sys.executable, "-m", MODULE, args.action, "--profile", args.profile]).returncode


def up_command(args: argparse.Namespace) -> int:
    command = _command(args)
    if not args.detach:
        os.execv(sys.executable, command)  # the launcher owns the terminal and its signals
    if (pid := _read_pid(args.pid_file)) is not None and _alive(pid):
        raise StackError(
            f"a stack is already running (pid {pid}, {args.pid_file}); `storytelling stack down` first"
        )
    args.log_file.parent.mkdir(parents=True, exist_ok=True)
    with args.log_file.open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    args.pid_file.parent.mkdir(parents=True, exist_ok=True)
    args.pid_file.write_text(f"{process.pid}\n")
    _wait_serving(process, args)
    print(f"stack is up (pid {process.pid}); orchestrator at {args.address}; logs in {args.log_file}")
    return 0


def _wait_serving(process: subprocess.Popen, args: argparse.Namespace) -> None:
    deadline = time.monotonic() + args.wait
    with Client(args.address, timeout=2.0, options=channel_options(args)) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                args.pid_file.unlink(missing_ok=True)
                tail = args.log_file.read_text(errors="replace")[-2000:]
                raise StackError(
                    f"the stack exited with status {process.returncode}; last log lines:\n{tail}"
                )
            try:
                next(client.list_jobs(page_size=1), None)
                return
            except UnavailableError:
                time.sleep(0.5)
    raise StackError(
        f"the orchestrator did not answer at {args.address} within {args.wait:.0f} s; "
        f"it is still starting or failed: see {args.log_file}"
    )


def down_command(args: argparse.Namespace) -> int:
    pid = _read_pid(args.pid_file)
    if pid is None or not _alive(pid):
        args.pid_file.unlink(missing_ok=True)
        raise StackError(f"no detached stack is running ({args.pid_file} names no live process)")
    os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + args.grace
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        print(f"stack (pid {pid}) did not stop within {args.grace:.0f} s; killed it")
    else:
        print(f"stack (pid {pid}) stopped")
    args.pid_file.unlink(missing_ok=True)
    return 0


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _alive(pid: int) -> bool:
    """Whether `pid` runs; a zombie (exited, not yet reaped by a non-reaping init) counts as stopped."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def status_command(args: argparse.Namespace) -> int:
    """0 while the stack runs; 1 when it is not running (with why it stopped, if it said)."""
    status = read_status(args.status_file)
    if status is None:
        raise StackError(f"no local stack has run here ({args.status_file} does not exist)")
    alive = _alive(status.pid)
    state = status.state if alive or status.state == "stopped" else "not running (it stopped without a word)"
    print(f"stack (pid {status.pid}): {state}" + (f": {status.reason}" if status.reason else ""))
    now = time.time()
    print(f"  {'PROCESS':<13} {'STATE':<11} {'PID':>7} {'RESTARTS':>8}  LAST EXIT")
    for child in status.children:
        pid = str(child.pid) if child.state in ("running", "restarting") else "-"
        print(f"  {child.name:<13} {child.state:<11} {pid:>7} {child.restarts:>8}  {_last_exit(child, now)}")
    return 0 if alive and status.state in ("starting", "running") else 1


def _last_exit(child: ChildStatus, now: float) -> str:
    if not child.last_exit:
        return ""
    ago = f" {now - child.last_exit_at:.0f} s ago" if child.last_exit_at else ""
    due = f"; restarts in {max(0.0, child.next_start_at - now):.0f} s" if child.next_start_at else ""
    return f"{child.last_exit}{ago}{due}"
