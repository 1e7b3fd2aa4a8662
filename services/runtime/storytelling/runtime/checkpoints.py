"""Model directories built from random weights carry a marker file, so every result they produce says so.

Tiny random models (the diffusion painter, the Idefics3 judge) run the real loading and serving code in
tests and in the `cpu-engines` profile; their outputs mean nothing. Whoever builds one marks it, and
whoever serves or reports from a directory checks the marker: the directory itself is the one owner.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

RANDOM_MARKER = "storytelling_random_weights.json"
RANDOM_NOTE = "random weights: plumbing test only"


def mark_random(directory: Path, builder: str) -> None:
    (directory / RANDOM_MARKER).write_text(json.dumps({"note": RANDOM_NOTE, "builder": builder}))


def is_random(model: str | Path) -> bool:
    """Whether `model` is a local directory marked as random weights (a hub id or name never is)."""
    return (Path(model) / RANDOM_MARKER).is_file()


def build_once(target: Path, write: Callable[[Path], None], built: Callable[[Path], bool]) -> Path:
    """Returns `target` once `built(target)`, writing it first if needed: `write` fills a temporary sibling
    that is then renamed into place, so a crash never leaves half a model there and concurrent builders at
    worst build twice."""
    if built(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        write(staging)
        try:
            os.replace(staging, target)
        except OSError:  # another builder finished first
            if not built(target):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
