"""Fixtures of the security tests: the orchestrator tests' job managers and the bombs, made once. The real
embedder is the session fixture of tests/engines."""

import pytest

from tests.orchestrator.conftest import make_manager  # noqa: F401 - shared fixture
from tests.security.bombs import png_bomb


@pytest.fixture(scope="session")
def bombs() -> dict[str, bytes]:
    """Over our limit but under Pillow's own (36 Mpx RGB, 108 MB decoded), and over both (1 Gpx)."""
    return {"36Mpx-rgb": png_bomb(6000, 6000, rgb=True), "1Gpx-grey": png_bomb(32000, 32000)}
