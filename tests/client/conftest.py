from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.fake_services import FakeServices
from tests.client.server import serve_in_thread


@pytest.fixture
def services(tmp_path: Path) -> Iterator[tuple[str, FakeServices]]:
    service = FakeServices(tmp_path / "data")
    with serve_in_thread(lambda: service) as address:
        yield address, service


@pytest.fixture
def address(services: tuple[str, FakeServices]) -> str:
    return services[0]
