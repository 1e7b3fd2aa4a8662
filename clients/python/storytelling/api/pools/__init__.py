"""Story pools: exemplar stories the CoR-guided prompt samples from, and the reference the evaluators
measure novelty, memorisation and control key points against. Shared by the story and evaluation
services (and training), so it lives in the API package: plain Python, no service code.

Formats: JSONL (`{"id", "story"}` per line, optionally `dimensions`, `split`, `setting`; the shipped pool
uses all of them) and the research CSV (`img_id,story` header, extra columns ignored). Every validation
error names the line and the field, so a user can fix their file.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from storytelling.v1 import common_pb2

Format = Literal["csv", "jsonl"]
SPLITS = ("train", "test")
BUILTIN_DIR = Path(__file__).parent
# The lower-case suffixes of the proto enum Dimension: "time", "location"...
DIMENSION_NAMES: tuple[str, ...] = tuple(
    name.removeprefix("DIMENSION_").lower()
    for name, number in common_pb2.Dimension.items()
    if number != common_pb2.DIMENSION_UNSPECIFIED
)


class PoolFormatError(ValueError):
    """A pool file is malformed; the message says where."""


@dataclass(frozen=True)
class PoolEntry:
    id: str
    story: str
    dimensions: tuple[str, ...] = ()
    split: str = ""
    setting: str = ""


@dataclass(frozen=True)
class Pool:
    name: str
    entries: tuple[PoolEntry, ...]
    description: str = ""
    source: str = ""
    _by_split: dict[str, tuple[PoolEntry, ...]] = field(init=False, repr=False, compare=False)
    _by_id: dict[str, PoolEntry] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        by_split: dict[str, list[PoolEntry]] = {}
        for entry in self.entries:
            by_split.setdefault(entry.split, []).append(entry)
        object.__setattr__(self, "_by_split", {k: tuple(v) for k, v in by_split.items()})
        object.__setattr__(self, "_by_id", {entry.id: entry for entry in self.entries})

    def get(self, entry_id: str) -> PoolEntry | None:
        return self._by_id.get(entry_id)

    @property
    def splits(self) -> dict[str, int]:
        return {name: len(entries) for name, entries in self._by_split.items() if name}

    def dimension_counts(self) -> dict[str, int]:
        return dict(Counter(d for entry in self.entries for d in entry.dimensions))

    def candidates(self, split: str | None) -> tuple[PoolEntry, ...]:
        """Entries of `split`; None means "train" where the pool has splits, else everything."""
        if split is None:
            split = "train" if "train" in self._by_split else ""
        return self.entries if not split else self._by_split.get(split, ())

    def sample(self, k: int, rng: random.Random, split: str | None = None) -> list[PoolEntry]:
        return rng.sample(self.candidates(split), k)


def detect_format(content: str) -> Format:
    return "jsonl" if content.lstrip("\ufeff \t\r\n").startswith("{") else "csv"


def parse_pool(name: str, content: bytes | str, fmt: str = "", **info: str) -> Pool:
    """Parses pool file content in `fmt` ("csv", "jsonl" or "" to detect)."""
    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            raise PoolFormatError(f"not UTF-8 text (byte {error.start})") from None
    else:
        content = content.removeprefix("\ufeff")  # text read with plain "utf-8" keeps the BOM
    if not content.strip():
        raise PoolFormatError("the pool is empty")
    fmt = fmt or detect_format(content)
    if fmt not in ("csv", "jsonl"):
        raise PoolFormatError(f"unknown format {fmt!r}; expected 'csv' or 'jsonl'")
    entries = _parse_jsonl(content) if fmt == "jsonl" else _parse_csv(content)
    return Pool(name=name, entries=tuple(_unique(entries)), **info)


def load_pool(path: str | Path, name: str | None = None, **info: str) -> Pool:
    """Loads a pool file; the format follows the extension (.csv, else JSONL)."""
    path = Path(path)
    try:
        return parse_pool(
            name or path.stem, path.read_bytes(), "csv" if path.suffix == ".csv" else "jsonl", **info
        )
    except PoolFormatError as error:
        raise PoolFormatError(f"{path}: {error}") from None


def _parse_jsonl(content: str) -> Iterable[tuple[int, PoolEntry]]:
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise PoolFormatError(f"line {number}: invalid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise PoolFormatError(f"line {number}: expected a JSON object, got {type(row).__name__}")
        yield number, _entry(number, row)


def _parse_csv(content: str) -> Iterable[tuple[int, PoolEntry]]:
    reader = csv.DictReader(io.StringIO(content, newline=""))
    try:
        missing = {"img_id", "story"} - set(reader.fieldnames or ())
        if missing:
            raise PoolFormatError(
                f"line 1: the CSV header must have columns img_id,story; missing {', '.join(sorted(missing))} "
                f"(got {','.join(reader.fieldnames or [])})"
            )
        for row in reader:
            number = reader.line_num
            if None in row:
                raise PoolFormatError(f"line {number}: more values than header columns (unquoted comma?)")
            yield number, _entry(number, {"id": row["img_id"], "story": row["story"]}, id_field="img_id")
    except csv.Error as error:  # e.g. a field over csv.field_size_limit(); else an internal error
        # DictReader.line_num updates only after a good row; its inner reader counts the line that failed.
        raise PoolFormatError(f"line {reader.reader.line_num}: unreadable CSV ({error})") from None


def _entry(number: int, row: dict, id_field: str = "id") -> PoolEntry:
    def text(key: str, shown: str, required: bool) -> str:
        value = row.get(key)
        if value is None:
            if required:
                raise PoolFormatError(f"line {number}: field '{shown}' is missing or empty")
            return ""
        if isinstance(value, int) and not isinstance(value, bool) and key == "id":
            value = str(value)
        if not isinstance(value, str):
            raise PoolFormatError(f"line {number}: field '{shown}' must be a string, got {value!r}")
        if required and not value.strip():
            raise PoolFormatError(f"line {number}: field '{shown}' is missing or empty")
        return value.strip()

    dimensions = row.get("dimensions", [])
    if not isinstance(dimensions, list) or not all(isinstance(d, str) for d in dimensions):
        raise PoolFormatError(f"line {number}: field 'dimensions' must be a list of strings")
    unknown = [d for d in dimensions if d not in DIMENSION_NAMES]
    if unknown:
        raise PoolFormatError(
            f"line {number}: field 'dimensions' has unknown {unknown}; known: {', '.join(DIMENSION_NAMES)}"
        )
    split = text("split", "split", required=False)
    if split and split not in SPLITS:
        raise PoolFormatError(f"line {number}: field 'split' must be one of {SPLITS}, got {split!r}")
    return PoolEntry(
        id=text("id", id_field, required=True),
        story=text("story", "story", required=True),
        dimensions=tuple(dict.fromkeys(dimensions)),
        split=split,
        setting=text("setting", "setting", required=False),
    )


def _unique(entries: Iterable[tuple[int, PoolEntry]]) -> list[PoolEntry]:
    seen: dict[str, int] = {}
    result = []
    for number, entry in entries:
        if entry.id in seen:
            raise PoolFormatError(
                f"line {number}: duplicate id {entry.id!r} (first on line {seen[entry.id]})"
            )
        seen[entry.id] = number
        result.append(entry)
    if not result:
        raise PoolFormatError("the pool has no stories")
    return result


class PoolRegistry:
    """Named pools the service can sample from; the first registered is the default unless set."""

    def __init__(self, pools: Iterable[Pool] = (), default: str | None = None) -> None:
        self._pools: dict[str, Pool] = {}
        for pool in pools:
            self.add(pool)
        self.default = default or next(iter(self._pools), "")

    def add(self, pool: Pool) -> None:
        if pool.name in self._pools:
            raise ValueError(f"pool {pool.name!r} is registered twice")
        self._pools[pool.name] = pool

    def get(self, name: str) -> Pool | None:
        return self._pools.get(name or self.default)

    def __iter__(self) -> Iterator[Pool]:
        return iter(self._pools.values())

    def names(self) -> list[str]:
        return list(self._pools)


def builtin_pools() -> list[Pool]:
    """The pools shipped with the project."""
    return [
        load_pool(
            BUILTIN_DIR / "storytelling_v1.jsonl",
            description="Storytelling-scene descriptions written for StorytellingPainter: varied settings, "
            "cultures, eras, ages and cast sizes, each tagged with the dimensions it uses; train/test split.",
            source="StorytellingPainter project, Apache-2.0 (written for this project; not CogBench)",
        )
    ]
