"""Reads a folder of stories and images, such as the research script's output, into evaluation items.

Stories come from one CSV (`img_id,story` as in the research format, or `id,story`), one JSONL file
({"id": ..., "story": ...} per line), or one `.txt` file per story named by its id. Images are matched to
stories by file name: `<id>.png`, `<id>.jpg`, `<id>.jpeg` or `<id>.webp`, anywhere under the folder.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
_ID_KEYS = ("img_id", "id", "story_id")
_TEXT_KEYS = ("story", "text")


@dataclass(frozen=True)
class FolderItem:
    id: str
    story: str
    image: Path | None


def read_folder(
    folder: Path, stories: Path | None = None, *, exclude: Path | None = None
) -> list[FolderItem]:
    """Raises ValueError naming the file and line when the stories cannot be read. Files under `exclude`
    (the results of an earlier run) are ignored."""
    if not folder.is_dir():
        raise ValueError(f"{folder} is not a directory")
    source = stories or _find_story_file(folder)
    files = [p for p in sorted(folder.rglob("*")) if exclude is None or not p.is_relative_to(exclude)]
    texts = _read_story_file(source) if source is not None else _read_text_files(files)
    if not texts:
        raise ValueError(f"no stories found in {folder}: expected a CSV, a JSONL or .txt files")
    images = {p.stem: p for p in files if p.suffix.lower() in IMAGE_SUFFIXES}
    return [FolderItem(id=i, story=t, image=images.get(i)) for i, t in texts.items()]


def _find_story_file(folder: Path) -> Path | None:
    candidates = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".csv", ".jsonl"))
    if len(candidates) > 1:
        listed = ", ".join(p.name for p in candidates)
        raise ValueError(f"several story files in {folder} ({listed}); choose one with --stories")
    return candidates[0] if candidates else None


def _read_story_file(path: Path) -> dict[str, str]:
    if path.suffix.lower() == ".jsonl":
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}:{number}: not JSON ({error.msg})") from None
    else:
        with path.open(newline="", encoding="utf-8-sig") as file:
            rows = list(enumerate(csv.DictReader(file), 2))
    texts: dict[str, str] = {}
    for number, row in rows:
        story_id = next((str(row[k]) for k in _ID_KEYS if row.get(k) not in (None, "")), None)
        text = next((str(row[k]) for k in _TEXT_KEYS if row.get(k)), None)
        if story_id is None or text is None:
            raise ValueError(
                f"{path}:{number}: needs an id ({'/'.join(_ID_KEYS)}) and a story ({'/'.join(_TEXT_KEYS)})"
            )
        if story_id in texts:
            raise ValueError(f"{path}:{number}: duplicate id {story_id!r}")
        texts[story_id] = text.strip()
    return texts


def _read_text_files(files: list[Path]) -> dict[str, str]:
    return {p.stem: p.read_text(encoding="utf-8").strip() for p in files if p.suffix.lower() == ".txt"}
