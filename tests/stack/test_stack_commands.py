"""`storytelling stack plan|fetch`: the commands a user runs before starting a profile."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def storytelling(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "storytelling.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_stack_plan_prints_the_memory_plan():
    shown = storytelling("stack", "plan", "--profile", "gpu-80gb")
    assert shown.returncode == 0, shown.stderr
    assert "  judge        vllm: Qwen/Qwen3-VL-8B-Instruct" in shown.stdout
    assert "GPU plan: storyteller 37, judge 19, painter 20.5, reserve 1.5 = 78 of 78 GiB" in shown.stdout
    missing = storytelling("stack", "plan", "--profile", "gpu-1tb")
    assert missing.returncode == 2
    assert missing.stderr.startswith("error: no profile 'gpu-1tb'") and missing.stderr.count("\n") == 1


def test_stack_fetch_prepares_every_local_model():
    fetched = storytelling("stack", "fetch", "--profile", "offline")
    assert fetched.returncode == 0, fetched.stderr
    [line] = fetched.stdout.splitlines()
    assert (
        line.startswith("storyteller  builtin:smollm2-135m-instruct -> ") and "SmolLM2-135M-Instruct" in line
    )
    if shutil.which("nvidia-smi"):
        return  # a GPU machine would start downloading the gpu-24gb models
    refused = storytelling("stack", "fetch", "--profile", "gpu-24gb")
    assert refused.returncode == 2
    assert refused.stderr == (
        "error: profile 'gpu-24gb' needs an NVIDIA GPU and nvidia-smi reports none; use --profile "
        "cpu-engines or offline on this machine\n"
    )


def test_stack_up_with_a_missing_model_stops_at_once_with_one_line(tmp_path: Path):
    profile = (ROOT / "deploy" / "profiles" / "offline.yaml").read_text()
    missing = tmp_path / "no-such-model"
    path = tmp_path / "mine.yaml"
    path.write_text(
        profile.replace("name: offline", "name: mine").replace("builtin:smollm2-135m-instruct", str(missing))
    )
    start = time.monotonic()
    up = subprocess.run(
        [sys.executable, "-m", "storytelling.stack.local", "up", "--profile", str(path), "--ephemeral-ports"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert up.returncode == 2 and time.monotonic() - start < 60
    assert up.stderr == (
        f"error: storyteller model {str(missing)!r}: {missing} does not exist; download the model there or "
        "fix the path in the profile\n"
    )
    assert not (tmp_path / "runs").exists()  # nothing started, nothing written
