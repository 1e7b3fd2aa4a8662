"""The local stack's status file: what the launcher (storytelling.stack) writes and `storytelling stack
status` reads. One JSON document, replaced atomically on every change:

    {"pid": 1234, "state": "running", "reason": "", "updated_at": 1764528000.0,
     "children": [{"name": "render", "state": "running", "pid": 1301, "restarts": 1,
                   "last_exit": "killed by SIGKILL", "last_exit_at": ..., "next_start_at": null,
                   "started_at": ..., "address": "127.0.0.1:50052"}]}

A child's state is running, backoff (exited; restarts at next_start_at), restarting (starting again),
crash-loop (restarted too often: the stack stops) or stopped. The stack's is starting, running,
stopping or stopped, with the reason it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from storytelling.api.layout import write_atomic

STATUS_FILE = "stack-status.json"


def default_status_path() -> Path:
    """$STORYTELLING_CACHE_DIR/stack-status.json (default ~/.cache/storytelling)."""
    cache = os.environ.get("STORYTELLING_CACHE_DIR") or Path.home() / ".cache" / "storytelling"
    return Path(cache) / STATUS_FILE


@dataclass
class ChildStatus:
    name: str
    state: str
    pid: int = 0
    restarts: int = 0
    last_exit: str = ""
    last_exit_at: float | None = None
    next_start_at: float | None = None
    started_at: float | None = None
    address: str = ""


@dataclass
class StackStatus:
    pid: int
    state: str
    reason: str = ""
    updated_at: float = 0.0
    children: list[ChildStatus] = field(default_factory=list)


def write_status(path: Path, status: StackStatus) -> None:
    write_atomic(path, json.dumps(asdict(status), indent=2).encode("utf-8"), fsync=False)


def read_status(path: Path) -> StackStatus | None:
    """The status in `path`, or None if there is none (or it cannot be read)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        children = [ChildStatus(**child) for child in data.pop("children", [])]
        return StackStatus(**data, children=children)
    except (FileNotFoundError, ValueError, TypeError):
        return None
