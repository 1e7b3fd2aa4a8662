"""A job's artifacts on disk, in the documented layout, each written atomically.

    <data_dir>/jobs/<job_id>/job.json                        Job (protobuf JSON, without items)
                             items/<index:05d>/story.json    Story with its provenance
                             items/<index:05d>/image.<ext>   encoded image bytes
                             items/<index:05d>/image.json    Image without its bytes
                             items/<index:05d>/evaluation.json  ItemEvaluation
                             summary.json                    SetSummary
                             gallery/index.html              written by storytelling.report

A stage's artifact is its completion record: the orchestrator writes it before recording the stage as
done, and on resume an artifact that exists is read back instead of running the stage again. Writes go
to a temporary file that is fsynced and then renamed over the target, so a crash leaves either the old
file or the new one, never a torn one. image.json is written after the image bytes, so it marks both.
"""

import os
import tempfile
from pathlib import Path
from typing import TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

M = TypeVar("M", bound=Message)

_EXTENSIONS = {
    common_pb2.IMAGE_FORMAT_UNSPECIFIED: "png",
    common_pb2.IMAGE_FORMAT_PNG: "png",
    common_pb2.IMAGE_FORMAT_JPEG: "jpg",
    common_pb2.IMAGE_FORMAT_WEBP: "webp",
}


def atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # makes the rename itself durable
    finally:
        os.close(directory)


def _write_message(path: Path, message: Message) -> None:
    atomic_write(path, json_format.MessageToJson(message, indent=2).encode())


def _read_message(path: Path, message: M) -> M | None:
    try:
        return json_format.Parse(path.read_text(), message, ignore_unknown_fields=True)
    except FileNotFoundError:
        return None


class JobFiles:
    """Paths and atomic reads and writes of one job's artifacts."""

    def __init__(self, directory: Path):
        self.directory = directory

    def item_directory(self, index: int) -> Path:
        return self.directory / "items" / f"{index:05d}"

    def relative(self, path: Path) -> str:
        return path.relative_to(self.directory).as_posix()

    def story_path(self, index: int) -> Path:
        return self.item_directory(index) / "story.json"

    def image_meta_path(self, index: int) -> Path:
        return self.item_directory(index) / "image.json"

    def image_path(self, index: int, image_format: int) -> Path:
        return self.item_directory(index) / f"image.{_EXTENSIONS.get(image_format, 'png')}"

    def evaluation_path(self, index: int) -> Path:
        return self.item_directory(index) / "evaluation.json"

    @property
    def gallery_path(self) -> Path:
        return self.directory / "gallery" / "index.html"

    def write_job(self, job: pipeline_pb2.Job) -> None:
        without_items = pipeline_pb2.Job()
        without_items.CopyFrom(job)
        del without_items.items[:]
        _write_message(self.directory / "job.json", without_items)

    def write_story(self, index: int, story: common_pb2.Story) -> None:
        _write_message(self.story_path(index), story)

    def read_story(self, index: int) -> common_pb2.Story | None:
        return _read_message(self.story_path(index), common_pb2.Story())

    def write_image(self, index: int, image: common_pb2.Image) -> None:
        atomic_write(self.image_path(index, image.format), image.data)
        _write_message(self.image_meta_path(index), self.metadata(image))

    def read_image(self, index: int, *, with_data: bool) -> common_pb2.Image | None:
        image = _read_message(self.image_meta_path(index), common_pb2.Image())
        if image is not None and with_data:
            image.data = self.image_path(index, image.format).read_bytes()
        return image

    @staticmethod
    def metadata(image: common_pb2.Image) -> common_pb2.Image:
        meta = common_pb2.Image()
        meta.CopyFrom(image)
        meta.ClearField("data")
        return meta

    def write_evaluation(self, index: int, evaluation: evaluation_pb2.ItemEvaluation) -> None:
        _write_message(self.evaluation_path(index), evaluation)

    def read_evaluation(self, index: int) -> evaluation_pb2.ItemEvaluation | None:
        return _read_message(self.evaluation_path(index), evaluation_pb2.ItemEvaluation())

    def write_summary(self, summary: evaluation_pb2.SetSummary) -> None:
        _write_message(self.directory / "summary.json", summary)

    def read_summary(self) -> evaluation_pb2.SetSummary | None:
        return _read_message(self.directory / "summary.json", evaluation_pb2.SetSummary())
