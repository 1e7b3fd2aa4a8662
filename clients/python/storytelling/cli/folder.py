"""Reads a folder of stories and images, such as the research script's output, into evaluation items.

Stories come from one CSV (`img_id,story` as in the research format, or `id,story`), one JSONL file
({"id": ..., "story": ...} per line), or one `.txt` file per story named by its id. Images are matched to
stories by file name: `<id>.png`, `<id>.jpg`, `<id>.jpeg` or `<id>.webp`, anywhere under the folder.

Only those files are read, each with a size limit, because their bytes go to a service that may be
remote: a symbolic link that leads out of the folder (a way to send `~/.ssh/id_rsa` as `x.png`) is
refused, symlinked directories are not followed, and nothing else in the folder is opened.
"""

from __future__ import annotations

import csv
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
STORY_FILE_SUFFIXES = (".csv", ".jsonl")
_ID_KEYS = ("img_id", "id", "story_id")
_TEXT_KEYS = ("story", "text")


@dataclass(frozen=True)
class FolderLimits:
    """Sizes beyond which a file is refused, naming it, instead of being read."""

    story_file_bytes: int = 64 << 20
    story_chars: int = 20_000
    image_bytes: int = 32 << 20
    items: int = 100_000


@dataclass(frozen=True)
class FolderItem:
    id: str
    story: str
    image: Path | None

    def read_image(self, limits: FolderLimits) -> bytes | None:
        return None if self.image is None else read_limited(self.image, limits.image_bytes, "image")


def read_folder(
    folder: Path,
    stories: Path | None = None,
    *,
    exclude: Path | None = None,
    limits: FolderLimits | None = None,
) -> list[FolderItem]:
    """Raises ValueError naming the file (and line) when the stories cannot be read or a file breaks a
    limit. Files under `exclude` (the results of an earlier run) are ignored."""
    limits = limits or FolderLimits()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    files = _expected_files(folder, exclude)
    source = stories or _find_story_file(folder, files)
    if source is not None:
        texts = _read_story_file(source, limits)
    else:
        texts = {
            p.stem: _story(_read_text(p, limits), str(p), limits) for p in files if p.suffix.lower() == ".txt"
        }
    if not texts:
        raise ValueError(f"no stories found in {folder}: expected a CSV, a JSONL or .txt files")
    if len(texts) > limits.items:
        raise ValueError(f"{folder}: {len(texts)} stories, more than the limit of {limits.items}")
    images = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    return [FolderItem(id=i, story=t, image=images.get(i)) for i, t in texts.items()]


def _expected_files(folder: Path, exclude: Path | None) -> list[Path]:
    """The story and image files under `folder`, without following symlinked directories; a symlinked
    file is kept only if it resolves inside the folder."""
    root = folder.resolve()
    wanted = (*IMAGE_SUFFIXES, *STORY_FILE_SUFFIXES, ".txt")
    found = []
    for directory, subdirectories, names in os.walk(folder):  # os.walk does not follow symlinked dirs
        here = Path(directory)
        if exclude is not None and here.resolve().is_relative_to(exclude.resolve()):
            subdirectories.clear()
            continue
        subdirectories.sort()
        for name in sorted(names):
            path = here / name
            if path.suffix.lower() not in wanted:
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise ValueError(f"{path}: a symbolic link out of {folder}; refusing to read it")
            if path.is_file():
                found.append(path)
    return found


def read_limited(path: Path, limit: int, what: str) -> bytes:
    """The bytes of a regular file, refused beyond `limit` (checked while reading, not only by stat)."""
    with path.open("rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise ValueError(f"{path}: not a regular file")
        data = file.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{path}: {what} larger than the limit of {limit} bytes")
    return data


def _read_text(path: Path, limits: FolderLimits) -> str:
    try:
        return read_limited(path, limits.story_file_bytes, "story file").decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValueError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None


def _story(text: str, where: str, limits: FolderLimits) -> str:
    text = text.strip()
    if len(text) > limits.story_chars:
        raise ValueError(
            f"{where}: story of {len(text)} characters, more than the limit of {limits.story_chars}"
        )
    return text


def _find_story_file(folder: Path, files: list[Path]) -> Path | None:
    candidates = [p for p in files if p.parent == folder and p.suffix.lower() in STORY_FILE_SUFFIXES]
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise ValueError(f"several story files in {folder} ({listed}); choose one with --stories")
    return candidates[0] if candidates else None


def _read_story_file(path: Path, limits: FolderLimits) -> dict[str, str]:
    content = _read_text(path, limits)
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
    else:
        reader = csv.DictReader(io.StringIO(content, newline=""))
        try:
            rows = list(enumerate(reader, 2))
        except csv.Error as error:  # a field beyond csv's own size limit, a stray NUL...
            raise ValueError(f"{path}:{reader.line_num}: not CSV ({error})") from None
    texts: dict[str, str] = {}
    for number, row in rows:
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{number}: needs an object with an id and a story")
        story_id = next((str(row[k]) for k in _ID_KEYS if row.get(k) not in (None, "")), None)
        text = next((str(row[k]) for k in _TEXT_KEYS if row.get(k)), None)
        if story_id is None or text is None:
            raise ValueError(
                f"{path}:{number}: needs an id ({'/'.join(_ID_KEYS)}) and a story ({'/'.join(_TEXT_KEYS)})"
            )
        if story_id in texts:
            raise ValueError(f"{path}:{number}: duplicate id {story_id!r}")
        texts[story_id] = _story(text, f"{path}:{number}", limits)
    return texts
