"""Shared pytest configuration. Engine and model fixtures live in tests/engines/ and are imported here."""

import pytest

from tests.engines.models import embedder, tiny_vlm, vllm_vlm  # noqa: F401
from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
from tests.engines.vllm import vllm_server  # noqa: F401

# Under `pytest -n 2 --dist loadgroup` (make test) each group runs on one worker. The engine tests stay
# together, in order, so each session engine starts once and two never compete for the cores and the
# memory; the tests that need no engine, and the slow ones that mostly wait, run beside them.
ENGINES, BESIDE = "engines", "beside"


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that starts an engine stack of its own goes first, before the session engines are up:
    # together they would not fit in the memory of a machine like CI's.
    items.sort(key=lambda item: item.get_closest_marker("own_engines") is None)
    for item in items:
        beside = item.get_closest_marker("slow") is None or item.get_closest_marker("mostly_waits")
        item.add_marker(pytest.mark.xdist_group(BESIDE if beside else ENGINES))
