"""Noticing that files changed on disk: certificates rotated by cert-manager, token files edited.

A Kubernetes Secret mount replaces its files by swapping a hidden symlinked directory, so the stamp
follows symlinks: the inode and modification time of what a name resolves to now.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

Stamp = tuple[tuple[str, int, int, int], ...]


def stamp(paths: Iterable[Path]) -> Stamp:
    """What identifies the current content of `paths` without reading it; a missing file stamps as -1."""
    marks = []
    for path in paths:
        try:
            info = os.stat(path)
            marks.append((str(path), info.st_ino, info.st_mtime_ns, info.st_size))
        except OSError:
            marks.append((str(path), -1, -1, -1))
    return tuple(marks)


class FileWatch:
    """`changed()` is true once after the files (a fixed list, or one recomputed each time) change."""

    def __init__(self, paths: Callable[[], Iterable[Path]] | Iterable[Path]) -> None:
        self._paths = paths if callable(paths) else (lambda fixed=tuple(paths): fixed)
        self._last: Stamp | None = None

    def changed(self) -> bool:
        try:
            now = stamp(self._paths())
        except OSError:
            now = ()
        if now == self._last:
            return False
        self._last = now
        return True
