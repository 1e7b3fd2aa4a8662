"""Real vLLM fixture: the CPU build's OpenAI-compatible server serving SmolLM2-135M-Instruct."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storytelling.llm.smollm2 import materialize
from storytelling.stack.vllm import VLLMServer, start_vllm

SERVED_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """A vLLM server for the whole session; stopped (process group killed) at the end."""
    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    with start_vllm(materialize(), SERVED_MODEL, log_path=log) as server:
        yield server
