"""A model loaded lazily into this process and used one call at a time from a worker thread.

transformers models are not safe to call concurrently, and generation is CPU- or GPU-bound: a lock
serialises calls and `asyncio.to_thread` keeps the event loop free for health checks and other RPCs.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from storytelling.runtime.checkpoints import is_random
from storytelling.runtime.errors import Unavailable

T = TypeVar("T")


class InProcessModel:
    """Base of the embedded engines: subclasses implement `_load` and call `_run`."""

    noun = "model"

    def __init__(self, model: str, *, dtype: str = "float32", device: str = "cpu") -> None:
        self.model = model
        self.random_weights = is_random(model)
        self._dtype = dtype
        self._device = device  # torch device the weights and inputs go to: cpu, cuda, cuda:N
        self._lock = asyncio.Lock()
        self._loaded: tuple[Any, Any] | None = None
        self._error = ""
        # Set by aclose: a generation running in the worker thread stops at its next token, so a
        # shutting-down service is not kept alive by a thread the interpreter must wait for.
        self.closing = threading.Event()

    def _load(self) -> tuple[Any, Any]:
        """Loads (processor or tokenizer, model); runs in a worker thread."""
        raise NotImplementedError

    async def start(self) -> None:
        async with self._lock:
            if self._loaded is None:
                try:
                    self._loaded = await asyncio.to_thread(self._load)
                except (OSError, ValueError) as error:
                    self._error = f"cannot load {self.noun} {self.model!r}: {error}"
                    raise Unavailable(self._error) from error

    async def ready(self) -> tuple[bool, str]:
        if self._loaded is not None:
            return True, ""
        return False, self._error or f"{self.noun} {self.model!r} is not loaded yet"

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        await self.start()
        async with self._lock:
            return await asyncio.to_thread(fn, *args)

    async def aclose(self) -> None:
        self.closing.set()
        self._loaded = None

    def stopping_criteria(self) -> list[Any]:
        """transformers stopping criteria that end `generate` once this model is closing."""
        from transformers import StoppingCriteria

        closing = self.closing

        class Closing(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
                return closing.is_set()

        return [Closing()]
