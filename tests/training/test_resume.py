"""An SFT run killed (SIGKILL) after a checkpoint resumes from it on the rerun and trains on exactly as an
uninterrupted run does (slow: training processes; a tiny random model keeps the steps short)."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from storytelling.api.pools import builtin_pools
from storytelling.training.data import pool_examples
from storytelling.training.layout import RunLayout
from storytelling.training.records import read_json, write_jsonl

pytestmark = pytest.mark.slow

STEPS = ["--max-steps", "20", "--save-steps", "2", "--batch-size", "1", "--max-length", "128"]


def prepared(root: Path) -> RunLayout:
    layout = RunLayout(root)
    write_jsonl(layout.sft_data, (e.record() for e in pool_examples(builtin_pools()[0])[:8]))
    return layout


def sft(layout: RunLayout, base: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "storytelling.training", "sft", "--run", str(layout.root), *STEPS]
    command += ["--base-model", str(base)]
    log = (layout.root / "sft.log").open("ab")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_killed_run_resumes_from_its_last_checkpoint(tmp_path: Path, tiny_llm: Path) -> None:
    whole = prepared(tmp_path / "whole")
    assert sft(whole, tiny_llm).wait(timeout=900) == 0

    cut = prepared(tmp_path / "cut")
    first = sft(cut, tiny_llm)
    checkpoint = cut.checkpoints("sft") / "checkpoint-2" / "trainer_state.json"
    deadline = time.monotonic() + 900
    while not checkpoint.is_file() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert checkpoint.is_file(), (cut.root / "sft.log").read_text()[-3000:]
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not cut.metrics("sft").exists()  # killed before finishing

    assert sft(cut, tiny_llm).wait(timeout=900) == 0
    resumed, reference = read_json(cut.metrics("sft")), read_json(whole.metrics("sft"))
    assert 2 <= resumed["resumed_from_step"] < 20 and resumed["global_step"] == 20
    assert "resuming from" in (cut.root / "sft.log").read_text()
    # Same data order, optimizer and RNG state after the resume: the remaining steps match the
    # uninterrupted run's.
    losses = {e["step"]: e["loss"] for e in resumed["losses"]}
    expected = {e["step"]: e["loss"] for e in reference["losses"]}
    after = range(resumed["resumed_from_step"] + 1, 21)
    assert [losses[step] for step in after] == pytest.approx([expected[step] for step in after], rel=1e-4)
    assert resumed["tokens"] < reference["tokens"]  # only the steps after the checkpoint were trained again
