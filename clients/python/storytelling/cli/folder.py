"""Reads a folder of stories and images into evaluation items, the research script's output as it is.

The research script (`story_output_{llm}.jsonl` beside `image_{llm}_{painter}/`) writes one JSON object
per line: the story in `model_output`, the image's file name in `img_file_name` (`1.png`, `2.png`...,
absent when only stories were generated, and then the line's 1-based index names the image), and in
CoR-guided mode the three exemplars in `example1`..`example3` (ids in `example1_id`..). Those exemplars
become each story's novelty reference. `img_output_*.jsonl` (the painter's log) is not a story file.

Other layouts: one CSV (`img_id,story` as in the research pool format, or `id,story`), one JSONL
({"id": ..., "story": ...} per line), or one `.txt` file per story named by its id; images are matched
by file name (`<id>.png`, `.jpg`, `.jpeg`, `.webp`) anywhere under the folder. `Fields` maps other
column names (the CLI's --id-field, --story-field, --image-field, --exemplar-field).

Only those files are read, each with a size limit, because their bytes go to a service that may be
remote: a symbolic link that leads out of the folder (a way to send `~/.ssh/id_rsa` as `x.png`) is
refused, and so is an image file name in a story file that leads out of its folder (`../../.ssh/id_rsa`);
symlinked directories are not followed, and nothing else in the folder is opened.
"""

from __future__ import annotations

import csv
import glob
import io
import json
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
STORY_FILE_SUFFIXES = (".csv", ".jsonl")
RESEARCH_STORIES = re.compile(r"story_output_(?P<llm>.+)\.jsonl")


@dataclass(frozen=True)
class Fields:
    """Names of the columns (CSV) or keys (JSONL) to read, each tried in order."""

    id: tuple[str, ...] = ("img_id", "id", "story_id")
    story: tuple[str, ...] = ("story", "text", "model_output")
    image: tuple[str, ...] = ("img_file_name", "image", "image_file")
    exemplars: tuple[str, ...] = ("example1", "example2", "example3")


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
    exemplars: tuple[str, ...] = ()

    def read_image(self, limits: FolderLimits) -> bytes | None:
        return None if self.image is None else read_limited(self.image, limits.image_bytes, "image")


def read_folder(
    folder: Path,
    stories: Path | None = None,
    *,
    exclude: Path | None = None,
    fields: Fields = Fields(),
    images: Path | None = None,
    limits: FolderLimits | None = None,
) -> list[FolderItem]:
    """Raises ValueError naming the file (and line) when the stories cannot be read or a file breaks a
    limit. Files under `exclude` (the results of an earlier run) are ignored; `images` is the folder image
    file names are relative to (found beside a research story file when not given)."""
    limits = limits or FolderLimits()
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    files = _expected_files(folder, exclude)
    source = stories or _find_story_file(folder, files)
    if source is None:
        texts = {
            p.stem: _story(_read_text(p, limits), str(p), limits) for p in files if p.suffix.lower() == ".txt"
        }
        if not texts:
            raise ValueError(f"no stories found in {folder}: expected a CSV, a JSONL or .txt files")
        found = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
        items = [FolderItem(i, t, found.get(i)) for i, t in texts.items()]
    else:
        image_dir = images or _research_images(folder, source)
        items = _read_rows(source, fields, image_dir, files, limits)
    if len(items) > limits.items:
        raise ValueError(f"{folder}: {len(items)} stories, more than the limit of {limits.items}")
    return items


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
    top = [p for p in files if p.parent == folder]
    research = [p for p in top if RESEARCH_STORIES.fullmatch(p.name)]
    candidates = research or [
        p for p in top if p.suffix.lower() in STORY_FILE_SUFFIXES and not p.name.startswith("img_output_")
    ]
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise ValueError(f"several story files in {folder} ({listed}); choose one with --stories")
    return candidates[0] if candidates else None


def _research_images(folder: Path, source: Path) -> Path | None:
    """`image_{llm}_{painter}/` beside `story_output_{llm}.jsonl` (not a symlinked one); None for other
    layouts."""
    match = RESEARCH_STORIES.fullmatch(source.name)
    if match is None:
        return None
    found = sorted(
        p for p in folder.glob(f"image_{glob.escape(match['llm'])}_*") if p.is_dir() and not p.is_symlink()
    )
    if len(found) > 1:
        listed = ", ".join(p.name for p in found)
        raise ValueError(f"several image folders for {source.name} ({listed}); choose one with --images")
    return found[0] if found else None


def _rows(path: Path, limits: FolderLimits) -> list[tuple[int, dict]]:
    content = _read_text(path, limits)
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(content.splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
                if not isinstance(row, dict):
                    raise ValueError(f"{path}:{number}: expected a JSON object")
                rows.append((number, row))
        return rows
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        return list(enumerate(reader, 2))
    except csv.Error as error:  # a field beyond csv's own size limit, a stray NUL...
        raise ValueError(f"{path}:{reader.line_num}: not CSV ({error})") from None


def _first(row: dict, keys: tuple[str, ...]) -> str | None:
    return next((str(row[k]) for k in keys if row.get(k) not in (None, "")), None)


def _read_rows(
    path: Path, fields: Fields, image_dir: Path | None, files: list[Path], limits: FolderLimits
) -> list[FolderItem]:
    by_stem = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    items: dict[str, FolderItem] = {}
    for position, (number, row) in enumerate(_rows(path, limits), 1):
        where = f"{path}:{number}"
        text = _first(row, fields.story)
        if text is None or not text.strip():
            raise ValueError(f"{where}: needs a story ({'/'.join(fields.story)})")
        named = _first(row, fields.image)
        if image_dir is not None:  # the research layout: the file name, or the line's 1-based index
            image = _named_image(image_dir, named or f"{position}.png", where)
            story_id = _first(row, fields.id) or Path(named or str(position)).stem
        else:
            story_id = _first(row, fields.id)
            if story_id is None:
                raise ValueError(
                    f"{where}: needs an id ({'/'.join(fields.id)}) and a story ({'/'.join(fields.story)})"
                )
            image = _named_image(path.parent, named, where) if named else by_stem.get(story_id)
        if story_id in items:
            raise ValueError(f"{where}: duplicate id {story_id!r}")
        exemplars = tuple(
            _story(e, f"{where}: exemplar {key}", limits)
            for key, e in ((key, _first(row, (key,))) for key in fields.exemplars)
            if e and e.strip()
        )
        items[story_id] = FolderItem(story_id, _story(text, where, limits), image, exemplars)
    return list(items.values())


def _named_image(folder: Path, name: str, where: str) -> Path | None:
    """The image `name` (from a story file) under `folder`, None when absent; refused when it is not an
    image file name or leads out of the folder (by `..`, an absolute path or a symbolic link)."""
    path = folder / name
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        raise ValueError(f"{where}: image {name!r} is not a {'/'.join(IMAGE_SUFFIXES)} file")
    if not path.resolve().is_relative_to(folder.resolve()):
        how = "a symbolic link" if path.is_symlink() else "a path"
        raise ValueError(f"{where}: image {name!r} is {how} out of {folder}; refusing to read it")
    return path if path.is_file() else None
