"""Shared pytest configuration. Engine and model fixtures live in tests/engines/ and are imported here."""

from tests.engines.models import embedder, tiny_vlm, vllm_vlm  # noqa: F401
from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
from tests.engines.vllm import vllm_server  # noqa: F401
