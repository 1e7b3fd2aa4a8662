"""The SDK installs on its own: a wheel of clients/python in a fresh venv with only grpcio and protobuf."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_wheel_works_in_a_bare_venv(address: str, tmp_path: Path) -> None:
    bare = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # only what the venv installed

    def run(*command: str | Path) -> str:
        result = subprocess.run(
            [str(c) for c in command],
            check=False,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=tmp_path,
            env=bare,
        )
        assert result.returncode == 0, f"{command}:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    run(
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "-q",
        "-w",
        tmp_path / "wheels",
        ROOT / "clients" / "python",
    )
    run(sys.executable, "-m", "venv", tmp_path / "venv")  # no system site packages
    python = tmp_path / "venv" / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", *(tmp_path / "wheels").glob("*.whl"))

    listed = run(
        python, "-m", "pip", "list", "--format=freeze", "--exclude", "pip", "--exclude", "setuptools"
    )
    installed = {line.split("==")[0].lower().replace("_", "-") for line in listed.split()}
    assert installed == {"storytelling-client", "grpcio", "protobuf", "typing-extensions"}
    probe = "import importlib.util as u; print(u.find_spec('storytelling.runtime'), u.find_spec('PIL'))"
    assert run(python, "-c", probe).split() == ["None", "None"]

    painted = run(tmp_path / "venv" / "bin" / "storytelling", "paint", "-n", "1", "--address", address)
    gallery = Path(painted.splitlines()[-1].removeprefix("gallery: "))
    assert gallery.is_file() and "Items" in gallery.read_text()

    # Without the services installed, `stack up` says what is missing instead of failing obscurely.
    stack = subprocess.run(
        [tmp_path / "venv" / "bin" / "storytelling", "stack", "up"],
        capture_output=True,
        text=True,
        timeout=60,
        env=bare,
        cwd=tmp_path,
    )
    assert stack.returncode == 1
    assert "storytelling.stack.local is not importable" in stack.stderr
