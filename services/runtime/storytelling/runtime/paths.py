"""Where the project keeps converted and generated models between runs."""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$STORYTELLING_CACHE_DIR`, default `~/.cache/storytelling`; created on first use."""
    path = Path(os.environ.get("STORYTELLING_CACHE_DIR") or Path.home() / ".cache" / "storytelling")
    path.mkdir(parents=True, exist_ok=True)
    return path
