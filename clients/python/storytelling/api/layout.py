"""The job directory layout shared by the orchestrator, the CLI and the gallery: its one owner.

    <job_dir>/job.json                       Job (protobuf JSON, without items)
    <job_dir>/items/<index:05d>/story.json   Story with its provenance
    <job_dir>/items/<index:05d>/image.<ext>  image bytes (png, jpg or webp)
    <job_dir>/items/<index:05d>/image.json   Image without data
    <job_dir>/items/<index:05d>/evaluation.json  ItemEvaluation
    <job_dir>/summary.json                   SetSummary
    <job_dir>/gallery/index.html             the gallery page

A stage's artifact is its completion record: the orchestrator writes it before recording the stage as
done, and on resume an artifact that exists is read back instead of running the stage again. Every file
is written to a temporary file in the same directory, fsynced, renamed over the target and the rename
fsynced, so a reader or a crash sees either the old file or the new one, never a torn one. image.json
is written after the image bytes, so it marks both.

Nothing is read or written outside the job directory: job ids are checked (`check_job_id`), and every
artifact path is refused (`UnsafePath`) when a component is `..`, absolute or holds a NUL, when a
directory on the way is a symbolic link leading out of the job directory, or when the file itself is a
symbolic link (the layout never makes one, so one placed there is an attack, not an artifact).
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

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


def write_atomic(path: Path, data: bytes) -> None:
    """Replaces `path` with `data` durably: the file and then the rename are fsynced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)


def write_message(path: Path, message: Message) -> None:
    write_atomic(path, json_format.MessageToJson(message, indent=2).encode("utf-8"))


def read_message(path: Path, message_type: type[M], root: Path | None = None) -> M | None:
    """Parses a protobuf JSON file, ignoring fields a newer writer added; None if it does not exist.
    With `root`, the file must be a regular file under it (see `read_inside`)."""
    if root is None:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
    elif (data := read_inside(root, path)) is None:
        return None
    return json_format.Parse(data.decode("utf-8"), message_type(), ignore_unknown_fields=True)


def image_metadata(image: common_pb2.Image) -> common_pb2.Image:
    """The image without its bytes, as image.json holds it."""
    meta = common_pb2.Image()
    meta.CopyFrom(image)
    meta.ClearField("data")
    return meta


class JobFiles:
    """Paths and atomic reads and writes of one job directory's artifacts."""

    def __init__(self, directory: Path):
        self.directory = directory

    def item_directory(self, index: int) -> Path:
        return self.directory / ITEMS_DIR / f"{index:05d}"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

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

    def _write(self, path: Path, data: bytes) -> None:
        inside(self.directory, path.parent)  # checked before mkdir, which would follow a link
        write_atomic(path, data)

    def _write_message(self, path: Path, message: Message) -> None:
        self._write(path, json_format.MessageToJson(message, indent=2).encode("utf-8"))

    def _read_message(self, path: Path, message_type: type[M]) -> M | None:
        return read_message(path, message_type, root=self.directory)

    def write_job(self, job: pipeline_pb2.Job) -> None:
        without_items = pipeline_pb2.Job()
        without_items.CopyFrom(job)
        del without_items.items[:]
        self._write_message(self.job_path, without_items)

    def read_job(self) -> pipeline_pb2.Job | None:
        return self._read_message(self.job_path, pipeline_pb2.Job)

    def write_story(self, index: int, story: common_pb2.Story) -> None:
        self._write_message(self.story_path(index), story)

    def read_story(self, index: int) -> common_pb2.Story | None:
        return self._read_message(self.story_path(index), common_pb2.Story)

    def write_image(self, index: int, image: common_pb2.Image) -> None:
        self._write(self.image_path(index, image.format), image.data)
        self._write_message(self.image_meta_path(index), image_metadata(image))

    def read_image(self, index: int, *, with_data: bool) -> common_pb2.Image | None:
        image = self._read_message(self.image_meta_path(index), common_pb2.Image)
        if image is not None and with_data:
            path = self.image_path(index, image.format)
            data = read_inside(self.directory, path)
            if data is None:
                raise FileNotFoundError(f"{path}: image.json names an image that is not there")
            image.data = data
        return image

    def write_evaluation(self, index: int, evaluation: evaluation_pb2.ItemEvaluation) -> None:
        self._write_message(self.evaluation_path(index), evaluation)

    def read_evaluation(self, index: int) -> evaluation_pb2.ItemEvaluation | None:
        return self._read_message(self.evaluation_path(index), evaluation_pb2.ItemEvaluation)

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


def load_job(job_dir: Path) -> JobRecord:
    """Reads a job directory; items are those with a directory, in index order."""
    files = JobFiles(Path(job_dir))
    job = files.read_job()
    items_root = files.directory / ITEMS_DIR
    if job is None and not items_root.is_dir():
        raise FileNotFoundError(
            f"{files.directory} is not a job directory: it has neither {JOB_FILE} nor {ITEMS_DIR}/"
        )
    record = JobRecord(
        directory=files.directory,
        job=job or pipeline_pb2.Job(id=files.directory.name),
        summary=files.read_summary(),
    )
    indexed = sorted(
        (int(d.name), d)
        for d in items_root.glob("[0-9]*")
        if d.is_dir() and not d.is_symlink() and d.name.isdigit()
    )
    root = files.directory
    for index, directory in indexed:
        record.items.append(
            ItemRecord(
                index=index,
                directory=directory,
                story=read_message(directory / STORY_FILE, common_pb2.Story, root),
                image=read_message(directory / IMAGE_META_FILE, common_pb2.Image, root),
                image_path=_image_file(directory),
                evaluation=read_message(directory / EVALUATION_FILE, evaluation_pb2.ItemEvaluation, root),
            )
        )
    return record


def _image_file(directory: Path) -> Path | None:
    """The item's image, a regular file (a symbolic link there is ignored: the gallery must not show,
    or copy, whatever it points at)."""
    for suffix in ("png", "jpg", "jpeg", "webp"):
        candidate = directory / f"image.{suffix}"
        if candidate.is_file() and not candidate.is_symlink():
            return candidate
    return None
