"""Shared pytest configuration. Engine and model fixtures live in tests/engines/ and are imported here."""

import pytest

from tests.engines.models import embedder, tiny_vlm, vllm_vlm  # noqa: F401
from tests.engines.triton import tiny_painter, triton_painter  # noqa: F401
from tests.engines.vllm import vllm_server  # noqa: F401

# Under `pytest -n 2 --dist loadgroup` (make test) each group runs on one worker. The tests on the
# session engines, or on engines of their own, stay together in order: each session engine starts once,
# and two engine servers never compete for the cores and the memory (Triton calls a Python-backend stub
# that misses its one-second health check "not healthy"). Everything else runs beside them, the Triton
# outage test included: its engine idles for three minutes and is asked again only after.
ENGINES, BESIDE = "engines", "beside"
SESSION_ENGINES = frozenset({"vllm_server", "vllm_vlm", "triton_painter"})


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A test that starts engines of its own goes first, before the session engines are up: together
    # they would not fit in the memory of a machine like CI's.
    items.sort(key=lambda item: item.get_closest_marker("own_engines") is None)
    for item in items:
        engines = SESSION_ENGINES.intersection(getattr(item, "fixturenames", ()))
        engines = engines or item.get_closest_marker("own_engines")
        item.add_marker(pytest.mark.xdist_group(ENGINES if engines else BESIDE))
