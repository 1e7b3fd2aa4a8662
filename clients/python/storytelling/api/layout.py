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
"""

from __future__ import annotations

import os
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


def read_message(path: Path, message_type: type[M]) -> M | None:
    """Parses a protobuf JSON file, ignoring fields a newer writer added; None if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json_format.Parse(text, message_type(), ignore_unknown_fields=True)


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

    def write_job(self, job: pipeline_pb2.Job) -> None:
        without_items = pipeline_pb2.Job()
        without_items.CopyFrom(job)
        del without_items.items[:]
        write_message(self.job_path, without_items)

    def read_job(self) -> pipeline_pb2.Job | None:
        return read_message(self.job_path, pipeline_pb2.Job)

    def write_story(self, index: int, story: common_pb2.Story) -> None:
        write_message(self.story_path(index), story)

    def read_story(self, index: int) -> common_pb2.Story | None:
        return read_message(self.story_path(index), common_pb2.Story)

    def write_image(self, index: int, image: common_pb2.Image) -> None:
        write_atomic(self.image_path(index, image.format), image.data)
        write_message(self.image_meta_path(index), image_metadata(image))

    def read_image(self, index: int, *, with_data: bool) -> common_pb2.Image | None:
        image = read_message(self.image_meta_path(index), common_pb2.Image)
        if image is not None and with_data:
            image.data = self.image_path(index, image.format).read_bytes()
        return image

    def write_evaluation(self, index: int, evaluation: evaluation_pb2.ItemEvaluation) -> None:
        write_message(self.evaluation_path(index), evaluation)

    def read_evaluation(self, index: int) -> evaluation_pb2.ItemEvaluation | None:
        return read_message(self.evaluation_path(index), evaluation_pb2.ItemEvaluation)

    def write_summary(self, summary: evaluation_pb2.SetSummary) -> None:
        write_message(self.summary_path, summary)

    def read_summary(self) -> evaluation_pb2.SetSummary | None:
        return read_message(self.summary_path, evaluation_pb2.SetSummary)


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
    indexed = sorted((int(d.name), d) for d in items_root.glob("[0-9]*") if d.is_dir() and d.name.isdigit())
    for index, directory in indexed:
        record.items.append(
            ItemRecord(
                index=index,
                directory=directory,
                story=read_message(directory / STORY_FILE, common_pb2.Story),
                image=read_message(directory / IMAGE_META_FILE, common_pb2.Image),
                image_path=_image_file(directory),
                evaluation=read_message(directory / EVALUATION_FILE, evaluation_pb2.ItemEvaluation),
            )
        )
    return record


def _image_file(directory: Path) -> Path | None:
    for suffix in ("png", "jpg", "jpeg", "webp"):
        if (candidate := directory / f"image.{suffix}").is_file():
            return candidate
    return None
