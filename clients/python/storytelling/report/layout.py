"""The job directory layout shared by the orchestrator, the CLI and the gallery, read and written here.

    <job_dir>/job.json                       Job (protobuf JSON, without items)
    <job_dir>/items/<index:05d>/story.json   Story
    <job_dir>/items/<index:05d>/image.<ext>  image bytes (png, jpg or webp)
    <job_dir>/items/<index:05d>/image.json   Image without data
    <job_dir>/items/<index:05d>/evaluation.json  ItemEvaluation
    <job_dir>/summary.json                   SetSummary
    <job_dir>/gallery/index.html             the gallery page

Every file is written atomically (temporary file in the same directory, then os.replace), so a reader
or a crash never sees half a file.
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
GALLERY_FILE = Path("gallery") / "index.html"
IMAGE_SUFFIXES = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: "png",
    common_pb2.IMAGE_FORMAT_PNG: "png",
    common_pb2.IMAGE_FORMAT_JPEG: "jpg",
    common_pb2.IMAGE_FORMAT_WEBP: "webp",
}

M = TypeVar("M", bound=Message)


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


def item_dir(job_dir: Path, index: int) -> Path:
    return job_dir / ITEMS_DIR / f"{index:05d}"


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_message(path: Path, message: Message) -> None:
    write_atomic(path, json_format.MessageToJson(message, indent=2).encode())


def read_message(path: Path, message_type: type[M]) -> M | None:
    """Parses a protobuf JSON file, ignoring fields a newer writer added; None if it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return json_format.Parse(text, message_type(), ignore_unknown_fields=True)


def write_item(
    job_dir: Path,
    index: int,
    *,
    story: common_pb2.Story | None = None,
    image: common_pb2.Image | None = None,
    evaluation: evaluation_pb2.ItemEvaluation | None = None,
) -> None:
    """Writes the given artifacts of one item; the image's bytes go to their own file."""
    directory = item_dir(job_dir, index)
    if story is not None:
        write_message(directory / "story.json", story)
    if image is not None:
        write_atomic(directory / f"image.{IMAGE_SUFFIXES.get(image.format, 'png')}", image.data)
        meta = common_pb2.Image()
        meta.CopyFrom(image)
        meta.ClearField("data")
        write_message(directory / "image.json", meta)
    if evaluation is not None:
        write_message(directory / "evaluation.json", evaluation)


def load_job(job_dir: Path) -> JobRecord:
    """Reads a job directory; items are those with a directory, in index order."""
    job_dir = Path(job_dir)
    job = read_message(job_dir / JOB_FILE, pipeline_pb2.Job)
    items_root = job_dir / ITEMS_DIR
    if job is None and not items_root.is_dir():
        raise FileNotFoundError(
            f"{job_dir} is not a job directory: it has neither {JOB_FILE} nor {ITEMS_DIR}/"
        )
    record = JobRecord(
        directory=job_dir,
        job=job or pipeline_pb2.Job(id=job_dir.name),
        summary=read_message(job_dir / SUMMARY_FILE, evaluation_pb2.SetSummary),
    )
    indexed = sorted((int(d.name), d) for d in items_root.glob("[0-9]*") if d.is_dir() and d.name.isdigit())
    for index, directory in indexed:
        record.items.append(
            ItemRecord(
                index=index,
                directory=directory,
                story=read_message(directory / "story.json", common_pb2.Story),
                image=read_message(directory / "image.json", common_pb2.Image),
                image_path=_image_file(directory),
                evaluation=read_message(directory / "evaluation.json", evaluation_pb2.ItemEvaluation),
            )
        )
    return record


def _image_file(directory: Path) -> Path | None:
    for suffix in ("png", "jpg", "jpeg", "webp"):
        if (candidate := directory / f"image.{suffix}").is_file():
            return candidate
    return None
