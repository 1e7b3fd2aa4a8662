"""Shared pytest configuration. Engine fixtures live in tests/engines/ and are imported here."""

from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
from tests.engines.vllm import vllm_server  # noqa: F401
