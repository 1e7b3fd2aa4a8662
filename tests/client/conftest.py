from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.server import serve_in_thread
from tests.client.services import TestServices


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, TestServices]]:
    service = TestServices(tmp_path / "data")
    with serve_in_thread(lambda: service) as address:
        yield address, service


@pytest.fixture
def address(services: tuple[str, TestServices]) -> str:
    return services[0]
