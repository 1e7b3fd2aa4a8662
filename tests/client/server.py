"""Serves a runtime Service in a background thread, so blocking clients and subprocesses can call it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.service import Service
from storytelling.runtime.testing import running_service


@contextlib.contextmanager
def serve_in_thread(
    make_service: Callable[[], Service],
    start_timeout: float = 30.0,
    settings: ServiceSettings | None = None,
    credentials: grpc.ChannelCredentials | None = None,
) -> Iterator[str]:
    """Yields the loopback address of a service built and served with the full runtime on the thread's
    own event loop (so loop- and thread-bound resources such as SQLite connections live there).
    `settings` can turn on TLS and tokens; `credentials` then reach it for the health check."""
    started = threading.Event()
    state: dict = {}

    async def serve() -> None:
        async with running_service(make_service(), settings, credentials=credentials) as channel:
            state["address"] = channel.server.address
            state["loop"] = asyncio.get_running_loop()
            state["stop"] = asyncio.Event()
            started.set()
            await state["stop"].wait()

    with ThreadPoolExecutor(1, thread_name_prefix="test-server") as pool:
        server = pool.submit(asyncio.run, serve())
        deadline = time.monotonic() + start_timeout
        while not started.wait(0.05):
            if server.done():
                server.result()  # raises the reason it could not start
            if time.monotonic() > deadline:
                raise TimeoutError(f"test server did not start within {start_timeout} s")
        try:
            yield state["address"]
        finally:
            state["loop"].call_soon_threadsafe(state["stop"].set)
            server.result(timeout=10)
