"""Triton's Python backend in the execution environment named by EXECUTION_ENV_PATH: the remedy for images
whose own numpy is 2.x (docs/profiles.md), here a plain venv that sees this venv's packages."""

from __future__ import annotations

import os
import sysconfig
import venv
from pathlib import Path

import pytest
import tritonclient.grpc as grpcclient
from storytelling.render.painters.base import PaintJob
from storytelling.render.painters.triton import infer_inputs
from storytelling.stack.triton import triton_server

from tests.engines.triton import tiny_parameters
from tests.render.stories import SHORT

pytestmark = [pytest.mark.slow, pytest.mark.own_engines]


def stub_environments(group: int) -> list[dict[str, str]]:
    """Environments of the Python-backend stub processes in the server's process group."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if os.getpgid(int(pid)) != group:
                continue
            if b"triton_python_backend_stub" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                continue
            raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except (OSError, ProcessLookupError):
            continue
        found.append(dict(item.decode(errors="replace").split("=", 1) for item in raw if b"=" in item))
    return found


def test_the_painter_runs_in_the_execution_environment_it_is_given(tiny_painter: Path, tmp_path: Path):
    environment = tmp_path / "triton-env"
    venv.create(environment, with_pip=False)
    [site] = (environment / "lib").glob("python3.*/site-packages")
    (site / "storytelling_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    parameters = tiny_parameters(tiny_painter, EXECUTION_ENV_PATH=str(environment))
    with triton_server(
        ["painter"], {"painter": parameters["painter"]}, workdir=tmp_path / "triton", ready_timeout=600
    ) as server:
        client = grpcclient.InferenceServerClient(server.grpc_url)
        result = client.infer("painter", infer_inputs(PaintJob(SHORT, "", 64, 64, 2, 5.0, seed=3)))
        assert result.as_numpy("IMAGE").shape == (1, 64, 64, 3)
        client.close()
        stubs = stub_environments(server.process.pid)
        log = server.log_tail(200_000)
    assert f"Using Python execution env {environment}" in log
    assert stubs and all(env.get("VIRTUAL_ENV") == str(environment) for env in stubs), stubs
