"""The job directory layout shared by the orchestrator, the CLI and the gallery: its one owner.

    <job_dir>/job.json                       Job (protobuf JSON, without items)
    <job_dir>/items/<index:05d>/story.json   Story with its provenance
    <job_dir>/items/<index:05d>/image.<ext>  image bytes (png, jpg or webp)
    <job_dir>/items/<index:05d>/image.json   Image without data
    <job_dir>/items/<index:05d>/evaluation.json  ItemEvaluation
    <job_dir>/summary.json                   SetSummary
    <job_dir>/gallery/index.html             the gallery: the set and the first page of items
    <job_dir>/gallery/page-<n>.html          the gallery's further pages of items (n = 2, 3...)

A stage's artifact is its completion record: the orchestrator writes it before recording the stage as
done, and on resume an artifact that exists is read back instead of running the stage again. Files that
are rewritten (job.json, summary.json, the gallery) are written to a temporary file and renamed over
the target, so a reader sees the old file or the new one. An item's artifacts are written once, in place
(`write_once`); a crash can leave one cut short, and readers take an empty or unparsable artifact, or
image.json whose image is empty, as absent, so its stage runs again. image.json is written after the
image bytes, so it marks both. With `fsync` (the default) each file and its directory entry are fsynced,
which survives a power loss; the orchestrator instead syncs the whole file system once per group of
commits (its store's `sync_files`).

Nothing is read or written outside the job directory: job ids are checked (`check_job_id`), and every
artifact path is refused (`UnsafePath`) when a component is `..`, absolute or holds a NUL, when a
directory on the way is a symbolic link leading out of the job directory, or when the file itself is a
symbolic link (the layout never makes one, so one placed there is an attack, not an artifact).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import re
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

from storytelling.api import protojson

JOB_FILE = "job.json"
SUMMARY_FILE = "summary.json"
ITEMS_DIR = "items"
STORY_FILE = "story.json"
IMAGE_META_FILE = "image.json"
EVALUATION_FILE = "evaluation.json"
GALLERY_FILE = Path("gallery") / "index.html"
IMAGE_SUFFIXES = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: "png",
    common_pb2.IMAGE_FORMAT_PNG: "png",
    common_pb2.IMAGE_FORMAT_JPEG: "jpg",
    common_pb2.IMAGE_FORMAT_WEBP: "webp",
}

M = TypeVar("M", bound=Message)
JOB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")

logger = logging.getLogger(__name__)


class UnsafePath(ValueError):
    """A path that would leave its job directory; the message says which and why."""


def check_job_id(job_id: str) -> str:
    """`job_id` if it can name a directory under the jobs directory (letters, digits, - and _)."""
    if not JOB_ID.fullmatch(job_id):
        raise UnsafePath(f"not a job id: 1-64 letters, digits, '-' or '_' (got {len(job_id)} characters)")
    return job_id


def inside(root: Path, path: Path) -> Path:
    """`path`, which must be under `root` and stay there once every symbolic link on the way is followed."""
    text = os.fspath(path)
    if "\x00" in text:
        raise UnsafePath(f"{text!r}: a NUL byte in a path")
    try:
        relative = path.relative_to(root)
    except ValueError:
        raise UnsafePath(f"{text}: not under {root}") from None
    if ".." in relative.parts:
        raise UnsafePath(f"{text}: '..' in an artifact path")
    if not path.resolve().is_relative_to(root.resolve()):
        raise UnsafePath(f"{text}: leads out of {root} through a symbolic link")
    return path


def check_directory(root: str, directory: str) -> None:
    """`inside(root, directory)` at the cost of a few lstat calls when no symbolic link is on the way
    (the usual case: the layout never makes one), instead of resolving every component from /; a link,
    `..` or anything unusual gets the full check."""
    relative = directory[len(root) :] if directory.startswith(root + "/") else None
    if relative is None or "\x00" in relative or "/." in relative:
        inside(Path(root), Path(directory))
        return
    path = root
    for part in relative.strip("/").split("/"):
        path = f"{path}/{part}"
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return  # made from here on by the writer, below a checked directory
        if not stat.S_ISDIR(mode):
            inside(Path(root), Path(directory))
            return


def read_inside(root: Path, path: Path) -> bytes | None:
    """The bytes of the regular file `path` under `root`, None if it does not exist; never follows a
    symbolic link at `path` itself (O_NOFOLLOW), so a link swapped in after the check is refused too."""
    inside(root, path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        if path.is_symlink():
            raise UnsafePath(f"{path}: a symbolic link where an artifact belongs") from None
        raise error
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            raise UnsafePath(f"{path}: not a regular file")
        return file.read()


def write_atomic(path: Path | str, data: bytes, *, fsync: bool = True) -> None:
    """Replaces `path` with `data` atomically; with `fsync`, durably (the file, then the rename). The
    directory is created if it does not exist."""
    target = os.fspath(path)
    directory, name = os.path.split(target)
    temporary = os.path.join(directory, f".{name}.{os.getpid()}-{next(_TEMPORARIES)}.tmp")
    try:
        fd = os.open(temporary, _CREATE, 0o644)
    except FileNotFoundError:
        os.makedirs(directory or ".", exist_ok=True)
        fd = os.open(temporary, _CREATE, 0o644)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            if fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    if fsync:
        handle = os.open(directory or ".", os.O_RDONLY)
        try:
            os.fsync(handle)  # makes the rename itself durable
        finally:
            os.close(handle)


# Numbers temporary files within a process (the pid in their name tells processes apart); count() is
# safe to share between threads.
_TEMPORARIES = itertools.count()
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def write_once(path: Path | str, data: bytes, *, fsync: bool = True) -> None:
    """Writes an item's artifact, which a stage writes once: created in place, one directory entry
    instead of a temporary file and a rename (file creation dominates the orchestrator's cost per item);
    replaced atomically if it exists (a stage run again after a crash). A file cut short by a crash is
    never trusted: readers take an empty or unparsable artifact as absent, and image.json is written
    after the image, so it marks both."""
    target = os.fspath(path)
    try:
        fd = os.open(target, _CREATE, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(target) or ".", exist_ok=True)
        fd = os.open(target, _CREATE, 0o644)
    except FileExistsError:
        write_atomic(target, data, fsync=fsync)
        return
    try:
        _write_all(fd, data)
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    if fsync:
        handle = os.open(os.path.dirname(target) or ".", os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)


def _write_all(fd: int, data: bytes) -> None:
    """Writes `data` to `fd` with os.write (a file object costs more than writing a small artifact)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class ArtifactWrite(NamedTuple):
    """One artifact to write once (`write_once`): a protobuf message, written as its JSON, or raw bytes.
    Plain data, so that the writer, not the caller, pays for the JSON (the costliest part of recording an
    item), on whatever thread writes it; a tuple, as one is made per artifact on the event loop."""

    path: str
    data: bytes
    # The protobuf message type serialized in `data`; None: `data` is written as it is.
    message: type[Message] | None = None
    # The job directory the artifact must stay in (see `inside`).
    root: str = ""

    def run(self, fsync: bool = True) -> None:
        data = self.data
        if self.message is not None:
            data = message_json(self.message.FromString(data))
        write_once(self.path, data, fsync=fsync)


def write_artifacts(writes: Sequence[ArtifactWrite], fsync: bool = True) -> None:
    """Writes `writes` in order, each directory checked to stay in its job directory before anything is
    created in it (once per directory: an item's artifacts share one)."""
    checked: set[str] = set()
    for write in writes:
        directory = os.path.dirname(write.path)
        if write.root and directory not in checked:
            check_directory(write.root, directory)
            checked.add(directory)
        write.run(fsync)


def message_json(message: Message) -> bytes:
    """Protobuf JSON on one line, as json_format writes it (`protojson`, faster; an indented dump would
    be several times slower: Python's C JSON encoder only runs without indent)."""
    return protojson.message_json(message)


def write_message(path: Path | str, message: Message, *, fsync: bool = True) -> None:
    write_atomic(path, message_json(message), fsync=fsync)


def read_message(path: Path | str, message_type: type[M], root: Path | None = None) -> M | None:
    """Parses a protobuf JSON file, ignoring fields a newer writer added; None if it does not exist, or
    is empty or cut short (by a crash while it was written, or a power loss before it was synced).
    With `root`, the file must be a regular file under it (see `read_inside`)."""
    if root is None:
        try:
            with open(path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            return None
    elif (data := read_inside(root, Path(path))) is None:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    try:
        return json_format.Parse(text, message_type(), ignore_unknown_fields=True)
    except json_format.ParseError as error:
        logger.warning("%s is incomplete, taken as absent: %s", path, error)
        return None


def image_metadata(image: common_pb2.Image) -> common_pb2.Image:
    """The image without its bytes, as image.json holds it."""
    meta = common_pb2.Image()
    meta.CopyFrom(image)
    meta.ClearField("data")
    return meta


class JobFiles:
    """Paths and atomic reads and writes of one job directory's artifacts; `fsync` as in write_atomic."""

    def __init__(self, directory: Path, *, fsync: bool = True):
        self.directory = directory
        self.fsync = fsync
        self._root = os.fspath(directory)

    def _item_file(self, index: int, name: str) -> str:
        """The path of an item's artifact as a string: built per item and stage, kept cheap."""
        return f"{self._root}/{ITEMS_DIR}/{index:05d}/{name}"

    def item_directory(self, index: int) -> Path:
        return self.directory / ITEMS_DIR / f"{index:05d}"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

    def relative_image_path(self, index: int, image_format: int) -> str:
        """`relative(image_path(...))`, built as a string: it is recorded for every item."""
        return f"{ITEMS_DIR}/{index:05d}/image.{IMAGE_SUFFIXES.get(image_format, 'png')}"

    def story_path(self, index: int) -> Path:
        return self.item_directory(index) / STORY_FILE

    def image_meta_path(self, index: int) -> Path:
        return self.item_directory(index) / IMAGE_META_FILE

    def image_path(self, index: int, image_format: int) -> Path:
        return self.item_directory(index) / f"image.{IMAGE_SUFFIXES.get(image_format, 'png')}"

    def evaluation_path(self, index: int) -> Path:
        return self.item_directory(index) / EVALUATION_FILE

    @property
    def job_path(self) -> Path:
        return self.directory / JOB_FILE

    @property
    def summary_path(self) -> Path:
        return self.directory / SUMMARY_FILE

    def _write_message(self, path: Path, message: Message) -> None:
        inside(self.directory, path.parent)  # checked before the directory is made, which follows links
        write_message(path, message, fsync=self.fsync)

    def _read_message(self, path: Path | str, message_type: type[M]) -> M | None:
        return read_message(path, message_type, root=self.directory)

    def write_job(self, job: pipeline_pb2.Job) -> None:
        without_items = pipeline_pb2.Job()
        without_items.CopyFrom(job)
        del without_items.items[:]
        self._write_message(self.job_path, without_items)

    def read_job(self) -> pipeline_pb2.Job | None:
        return self._read_message(self.job_path, pipeline_pb2.Job)

    def story_writes(self, index: int, story: common_pb2.Story) -> list[ArtifactWrite]:
        return [self._message_write(self._item_file(index, STORY_FILE), story)]

    def image_writes(self, index: int, image: common_pb2.Image) -> list[ArtifactWrite]:
        """The image's bytes, then image.json, which marks both as written."""
        name = f"image.{IMAGE_SUFFIXES.get(image.format, 'png')}"
        return [
            ArtifactWrite(self._item_file(index, name), image.data, root=self._root),
            self._message_write(self._item_file(index, IMAGE_META_FILE), image_metadata(image)),
        ]

    def evaluation_writes(self, index: int, evaluation: evaluation_pb2.ItemEvaluation) -> list[ArtifactWrite]:
        return [self._message_write(self._item_file(index, EVALUATION_FILE), evaluation)]

    def _message_write(self, path: str, message: Message) -> ArtifactWrite:
        return ArtifactWrite(path, message.SerializeToString(), type(message), self._root)

    def write_story(self, index: int, story: common_pb2.Story) -> None:
        write_artifacts(self.story_writes(index, story), self.fsync)

    def read_story(self, index: int) -> common_pb2.Story | None:
        return self._read_message(self._item_file(index, STORY_FILE), common_pb2.Story)

    def write_image(self, index: int, image: common_pb2.Image) -> None:
        write_artifacts(self.image_writes(index, image), self.fsync)

    def read_image(self, index: int, *, with_data: bool) -> common_pb2.Image | None:
        """image.json, with the image's bytes if asked; None unless both are there and the image is not
        empty."""
        image = self._read_message(self._item_file(index, IMAGE_META_FILE), common_pb2.Image)
        if image is None:
            return None
        path = self._item_file(index, f"image.{IMAGE_SUFFIXES.get(image.format, 'png')}")
        if with_data:
            image.data = read_inside(self.directory, Path(path)) or b""
            complete = bool(image.data)
        else:  # image.json was read through the same (checked) directory
            try:
                found = os.lstat(path)
            except FileNotFoundError:
                return None
            if not stat.S_ISREG(found.st_mode):
                raise UnsafePath(f"{path}: not a regular file (a symbolic link where an artifact belongs?)")
            complete = found.st_size > 0
        return image if complete else None

    def write_evaluation(self, index: int, evaluation: evaluation_pb2.ItemEvaluation) -> None:
        write_artifacts(self.evaluation_writes(index, evaluation), self.fsync)

    def read_evaluation(self, index: int) -> evaluation_pb2.ItemEvaluation | None:
        return self._read_message(self._item_file(index, EVALUATION_FILE), evaluation_pb2.ItemEvaluation)

    def write_summary(self, summary: evaluation_pb2.SetSummary) -> None:
        self._write_message(self.summary_path, summary)

    def read_summary(self) -> evaluation_pb2.SetSummary | None:
        return self._read_message(self.summary_path, evaluation_pb2.SetSummary)


@dataclass
class ItemRecord:
    """One item's artifacts; a field is None where the stage has not written it (or failed)."""

    index: int
    directory: Path
    story: common_pb2.Story | None = None
    image: common_pb2.Image | None = None
    image_path: Path | None = None
    evaluation: evaluation_pb2.ItemEvaluation | None = None

    @classmethod
    def of_item(cls, files: JobFiles, item: pipeline_pb2.Item) -> ItemRecord:
        """The record of an item as the orchestrator holds it (its artifacts' contents are on it)."""
        return cls(
            index=item.index,
            directory=files.item_directory(item.index),
            story=item.story if item.HasField("story") else None,
            image=item.image if item.HasField("image") else None,
            image_path=files.directory / item.artifacts.image_path if item.artifacts.image_path else None,
            evaluation=item.evaluation if item.HasField("evaluation") else None,
        )


@dataclass
class JobRecord:
    directory: Path
    job: pipeline_pb2.Job
    items: list[ItemRecord] = field(default_factory=list)
    summary: evaluation_pb2.SetSummary | None = None


def write_item(
    job_dir: Path,
    index: int,
    *,
    story: common_pb2.Story | None = None,
    image: common_pb2.Image | None = None,
    evaluation: evaluation_pb2.ItemEvaluation | None = None,
) -> None:
    """Writes the given artifacts of one item; the image's bytes go to their own file."""
    files = JobFiles(Path(job_dir))
    if story is not None:
        files.write_story(index, story)
    if image is not None:
        files.write_image(index, image)
    if evaluation is not None:
        files.write_evaluation(index, evaluation)


def load_job(job_dir: Path, *, with_items: bool = True) -> JobRecord:
    """Reads a job directory; items are those with a directory, in index order (none without
    `with_items`: iterate over a large job's items with `iter_items` instead)."""
    files = JobFiles(Path(job_dir))
    job = files.read_job()
    if job is None and not (files.directory / ITEMS_DIR).is_dir():
        raise FileNotFoundError(
            f"{files.directory} is not a job directory: it has neither {JOB_FILE} nor {ITEMS_DIR}/"
        )
    record = JobRecord(
        directory=files.directory,
        job=job or pipeline_pb2.Job(id=files.directory.name),
        summary=files.read_summary(),
    )
    if with_items:
        record.items.extend(iter_items(files.directory))
    return record


def iter_items(job_dir: Path) -> Iterator[ItemRecord]:
    """The items of a job directory, in index order, each read when it is reached (an item directory
    that is a symbolic link is not an item)."""
    root = Path(job_dir)
    items_root = root / ITEMS_DIR
    if not items_root.is_dir():
        return
    indexed = sorted(
        (int(entry.name), Path(entry.path))
        for entry in os.scandir(items_root)
        if entry.name.isdigit() and entry.is_dir(follow_symlinks=False)
    )
    for index, directory in indexed:
        yield ItemRecord(
            index=index,
            directory=directory,
            story=read_message(directory / STORY_FILE, common_pb2.Story, root),
            image=read_message(directory / IMAGE_META_FILE, common_pb2.Image, root),
            image_path=_image_file(directory),
            evaluation=read_message(directory / EVALUATION_FILE, evaluation_pb2.ItemEvaluation, root),
        )


def _image_file(directory: Path) -> Path | None:
    """The item's image, a regular file (a symbolic link there is ignored: the gallery must not show,
    or copy, whatever it points at)."""
    for suffix in ("png", "jpg", "jpeg", "webp"):
        candidate = directory / f"image.{suffix}"
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    return None
