"""Model directories built from random weights carry a marker file, so every result they produce says so.

Tiny random models (the diffusion painter, the Idefics3 judge) run the real loading and serving code in
tests and in the `cpu-engines` profile; their outputs mean nothing. Whoever builds one marks it, and
whoever serves or reports from a directory checks the marker: the directory itself is the one owner.
"""

from __future__ import annotations

import json
from pathlib import Path

RANDOM_MARKER = "storytelling_random_weights.json"
RANDOM_NOTE = "random weights: plumbing test only"


def mark_random(directory: Path, builder: str) -> None:
    (directory / RANDOM_MARKER).write_text(json.dumps({"note": RANDOM_NOTE, "builder": builder}))


def is_random(model: str | Path) -> bool:
    """Whether `model` is a local directory marked as random weights (a hub id or name never is)."""
    return (Path(model) / RANDOM_MARKER).is_file()
