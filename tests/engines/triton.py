"""Real Triton server fixtures: the deployment's painter models serving the tiny random pipeline on CPU."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storytelling.render.tiny import ensure_tiny_pipeline
from storytelling.stack.triton import TritonServer, triton_server

PAINTER_MODELS = ["painter", "painter_stream"]


def tiny_parameters(model: Path, **overrides: str) -> dict[str, dict[str, str]]:
    """config.pbtxt parameters for both painter models: tiny pipeline, 2 steps, 64x64."""
    params = {"model": str(model), "steps": "2", "guidance_scale": "5.0", "width": "64", "height": "64"}
    params.update(overrides)
    return {name: params for name in PAINTER_MODELS}


@pytest.fixture(scope="session")
def tiny_painter() -> Path:
    """The tiny random StableDiffusionPipeline on disk (random weights: plumbing test only)."""
    return ensure_tiny_pipeline()


@pytest.fixture(scope="session")
def triton_painter(tiny_painter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TritonServer]:
    """tritonserver (from the nvidia-pytriton wheel) serving painter and painter_stream; stopped after."""
    with triton_server(
        PAINTER_MODELS, tiny_parameters(tiny_painter), workdir=tmp_path_factory.mktemp("triton")
    ) as s:
        yield s
