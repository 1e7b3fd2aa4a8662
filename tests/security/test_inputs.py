"""Untrusted input: decompression bombs, traversal through job ids and artifact paths, folder reading."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from storytelling.cli.folder import FolderLimits, read_folder
from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.service import EvaluationService
from storytelling.api.layout import JobFiles, UnsafePath, check_job_id, inside, load_job
from storytelling.runtime.images import UndecodableImage, decode
from storytelling.runtime.testing import running_service
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc, pipeline_pb2
from tests.evaluation.conftest import encoded

ROOT = Path(__file__).resolve().parents[2]

# --- decompression bombs ------------------------------------------------------------------------------


def test_bombs_are_small_and_real(bombs):
    assert all(len(data) < 1_000_000 for data in bombs.values())
    with pytest.raises(UndecodableImage, match="6000x6000 = 36000000 pixels, more than the limit"):
        decode(bombs["36Mpx-rgb"])
    assert decode(bombs["36Mpx-rgb"], max_pixels=36_000_000).size == (6000, 6000)  # a real image


def test_bombs_are_refused_before_decoding_in_bounded_memory(bombs, tmp_path):
    """In a process whose address space is capped at 1 GiB: decoding either bomb would need more."""
    paths = []
    for name, data in bombs.items():
        (path := tmp_path / f"{name}.png").write_bytes(data)
        paths.append(str(path))
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))\n"
        "from storytelling.runtime.images import UndecodableImage, decode\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        decode(open(path, 'rb').read())\n"
        "        print('DECODED', path)\n"
        "    except UndecodableImage as error:\n"
        "        print('refused:', error)\n"
        "print('grew_kb', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, *paths], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(":")[0] for line in lines[:2]] == ["refused", "refused"], result.stdout
    assert "more than the limit" in lines[0] and "too many pixels" in lines[1]
    assert int(lines[2].split()[1]) < 64 * 1024  # kilobytes: nothing near a decoded image


@pytest.fixture
async def evaluation(embedder):
    service = EvaluationService(Evaluation(embedder, None), max_image_pixels=1024 * 1024)
    async with running_service(service) as channel:
        yield evaluation_pb2_grpc.EvaluationServiceStub(channel)


async def test_the_evaluation_service_answers_a_bomb_with_invalid_argument_and_keeps_serving(
    evaluation, bombs
):
    for data in bombs.values():
        item = evaluation_pb2.EvaluationItem(
            id="bomb", story="A boy climbs a stool.", image=common_pb2.Image(data=data)
        )
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await evaluation.EvaluateItem(evaluation_pb2.EvaluateItemRequest(item=item))
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error.value.details().startswith("item.image.data: ")
    big = common_pb2.Image(data=encoded("PNG", size=(1025, 1024)), format=common_pb2.IMAGE_FORMAT_PNG)
    with pytest.raises(grpc.aio.AioRpcError, match="more than the limit of 1048576"):
        await evaluation.Complexity(evaluation_pb2.ComplexityRequest(image=big))
    fine = evaluation_pb2.EvaluationItem(
        id="ok", story="A boy climbs a stool.", image=common_pb2.Image(data=encoded("PNG"))
    )
    reply = await evaluation.EvaluateItem(evaluation_pb2.EvaluateItemRequest(item=fine))
    assert reply.evaluation.item_id == "ok"


# --- job ids and artifact paths -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "job_id", ["..", "../etc", "a/b", "/etc/passwd", "job\x00id", "x" * 65, "", "-leading", "name with space"]
)
def test_job_ids_that_could_name_another_directory_are_refused(job_id):
    with pytest.raises(UnsafePath):
        check_job_id(job_id)


def test_valid_job_ids():
    for job_id in ("3f2c9a0e5b7d4c1a8e6f0b2d4c6a8e0f", "run-item", "Job_2"):
        assert check_job_id(job_id) == job_id


@pytest.mark.parametrize("relative", ["../outside.json", "items/../../outside.json", "/etc/passwd", "a\x00b"])
def test_artifact_paths_stay_in_the_job_directory(tmp_path, relative):
    job = tmp_path / "jobs" / "j1"
    job.mkdir(parents=True)
    with pytest.raises(UnsafePath):
        inside(job, job / relative)


def secret(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    story = {"id": "stolen", "text": "SECRET CONTENT FROM OUTSIDE THE DATA DIRECTORY"}
    (outside / "story.json").write_text(json.dumps(story))
    return outside


def test_a_symlink_placed_as_an_artifact_is_refused_not_followed(tmp_path):
    files = JobFiles(tmp_path / "jobs" / "j1")
    files.write_story(0, common_pb2.Story(id="mine", text="A boy on a stool."))
    files.story_path(0).unlink()
    files.story_path(0).symlink_to(secret(tmp_path) / "story.json")
    with pytest.raises(UnsafePath, match="symbolic link"):
        files.read_story(0)
    with pytest.raises(UnsafePath):
        load_job(files.directory)


def test_a_symlinked_item_directory_is_neither_read_nor_written_through(tmp_path):
    outside = secret(tmp_path)
    files = JobFiles(tmp_path / "jobs" / "j1")
    files.write_job(pipeline_pb2.Job(id="j1"))
    (files.directory / "items").mkdir()
    files.item_directory(0).symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePath, match="leads out of"):
        files.read_story(0)
    with pytest.raises(UnsafePath, match="leads out of"):
        files.write_evaluation(0, evaluation_pb2.ItemEvaluation(item_id="x"))
    assert sorted(os.listdir(outside)) == ["story.json"]  # nothing written there
    assert load_job(files.directory).items == []  # the gallery does not list it either


def test_a_symlinked_image_is_not_shown_or_read(tmp_path):
    files = JobFiles(tmp_path / "jobs" / "j1")
    image = common_pb2.Image(data=encoded("PNG"), format=common_pb2.IMAGE_FORMAT_PNG, width=80, height=60)
    files.write_image(0, image)
    files.image_path(0, image.format).unlink()
    files.image_path(0, image.format).symlink_to(secret(tmp_path) / "story.json")
    with pytest.raises(UnsafePath):
        files.read_image(0, with_data=True)
    assert load_job(files.directory).items[0].image_path is None


# --- storytelling evaluate FOLDER ----------------------------------------------------------------------


def research_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "research"
    (folder / "images").mkdir(parents=True)
    (folder / "stories.csv").write_text("img_id,story\n1,A boy climbs a stool.\n2,A nurse drops a tray.\n")
    (folder / "images" / "1.png").write_bytes(encoded("PNG"))
    (folder / "images" / "2.png").write_bytes(encoded("PNG"))
    return folder


def test_the_folder_reader_reads_only_stories_and_images(tmp_path):
    folder = research_folder(tmp_path)
    (folder / "notes.md").write_text("not read")
    os.mkfifo(folder / "pipe.png")  # opening a FIFO would block: it is not a regular file, so never read
    linked = tmp_path / "elsewhere"
    linked.mkdir()
    (linked / "2.png").write_bytes(b"outside")
    (folder / "images" / "more").symlink_to(linked, target_is_directory=True)  # not followed
    items = read_folder(folder)
    assert [(i.id, i.image.name if i.image else None) for i in items] == [("1", "1.png"), ("2", "2.png")]
    assert all(i.read_image(FolderLimits()) == encoded("PNG") for i in items)


def test_a_symlink_out_of_the_folder_is_refused(tmp_path):
    folder = research_folder(tmp_path)
    key = tmp_path / "id_rsa"
    key.write_text("-----BEGIN OPENSSH PRIVATE KEY-----")
    (folder / "images" / "2.png").unlink()
    (folder / "images" / "2.png").symlink_to(key)
    with pytest.raises(ValueError, match="a symbolic link out of"):
        read_folder(folder)


def test_size_limits_name_the_file(tmp_path):
    folder = research_folder(tmp_path)
    small = FolderLimits(image_bytes=100)
    items = read_folder(folder, limits=small)
    with pytest.raises(ValueError, match=r"1\.png: image larger than the limit of 100 bytes"):
        items[0].read_image(small)
    with pytest.raises(ValueError, match="stories.csv: story file larger than the limit of 10 bytes"):
        read_folder(folder, limits=FolderLimits(story_file_bytes=10))
    with pytest.raises(ValueError, match=r"stories.csv:2: story of 21 characters, more than the limit of 20"):
        read_folder(folder, limits=FolderLimits(story_chars=20))
    with pytest.raises(ValueError, match="2 stories, more than the limit of 1"):
        read_folder(folder, limits=FolderLimits(items=1))
    (folder / "stories.csv").write_bytes(b"img_id,story\n1,\xff\xfe\n")
    with pytest.raises(ValueError, match="stories.csv: not UTF-8"):
        read_folder(folder)
