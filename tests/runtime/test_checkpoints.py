"""build_once: a model directory appears whole or not at all, and is built once."""

from pathlib import Path

import pytest
from storytelling.runtime.checkpoints import build_once, is_random, mark_random


def built(directory: Path) -> bool:
    return (directory / "config.json").is_file()


def test_builds_into_place_once_then_returns_the_directory(tmp_path: Path) -> None:
    calls: list[Path] = []

    def write(directory: Path) -> None:
        calls.append(directory)
        (directory / "config.json").write_text("{}")
        mark_random(directory, "tests")

    target = tmp_path / "models" / "tiny"
    assert build_once(target, write, built) == target
    assert built(target) and is_random(target)
    assert build_once(target, write, built) == target
    assert len(calls) == 1 and calls[0] != target, "written in a staging sibling, then renamed"
    assert sorted(p.name for p in target.parent.iterdir()) == ["tiny"], "no staging directory left"


def test_a_failed_build_leaves_nothing_behind(tmp_path: Path) -> None:
    def write(directory: Path) -> None:
        (directory / "config.json").write_text("{")
        raise RuntimeError("conversion failed")

    with pytest.raises(RuntimeError, match="conversion failed"):
        build_once(tmp_path / "tiny", write, built)
    assert list(tmp_path.iterdir()) == []


def test_a_builder_that_finished_first_wins(tmp_path: Path) -> None:
    target = tmp_path / "tiny"

    def write(directory: Path) -> None:
        (directory / "config.json").write_text('{"mine": true}')
        target.mkdir()  # another process renames its copy into place meanwhile
        (target / "config.json").write_text('{"theirs": true}')
        (target / "weights.safetensors").write_text("")

    assert build_once(target, write, built) == target
    assert (target / "config.json").read_text() == '{"theirs": true}'
    assert [p.name for p in tmp_path.iterdir()] == ["tiny"]
