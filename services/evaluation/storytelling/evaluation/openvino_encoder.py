"""The embedder's OpenVINO backend: only the transformer runs in OpenVINO. Tokenisation, pooling and
normalisation stay the sentence-transformers model's own modules, so whatever pooling a model declares
is kept. The converted network is cached on disk, keyed by the weights, so a service converts a model
once (about 4 s for all-MiniLM-L6-v2) and later starts only compile it (under 1 s)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from storytelling.runtime.checkpoints import build_once

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

PRECISION_HINTS = {"float32": "f32", "bfloat16": "bf16"}
IR_FILE = "model.xml"


def weights_key(model: SentenceTransformer) -> str:
    """A digest of the transformer's weights and the OpenVINO release that converts them."""
    import openvino

    digest = hashlib.sha256(openvino.__version__.encode())
    for name, tensor in model[0].auto_model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
    return digest.hexdigest()[:24]


class OpenVINOEncoder:
    """Encodes with `model`'s transformer compiled by OpenVINO for the CPU at `precision`."""

    def __init__(self, model: SentenceTransformer, precision: str, cache: Path) -> None:
        import openvino

        if precision not in PRECISION_HINTS:
            raise ValueError(f"dtype: OpenVINO runs float32 or bfloat16, not {precision!r}")
        self._model = model
        self.ir_path = build_once(cache / weights_key(model), self._convert, self._converted) / IR_FILE
        core = openvino.Core()
        self._network = core.compile_model(
            core.read_model(self.ir_path), "CPU", {"INFERENCE_PRECISION_HINT": PRECISION_HINTS[precision]}
        )
        self._inputs = {port.get_any_name() for port in self._network.inputs}

    @staticmethod
    def _converted(directory: Path) -> bool:
        return (directory / IR_FILE).is_file() and (directory / IR_FILE).with_suffix(".bin").is_file()

    def _convert(self, directory: Path) -> None:
        import openvino
        import torch

        example = self._features(["a story", "a longer story than that"])
        with warnings.catch_warnings():  # tracing notes Python-side shape checks; inputs stay dynamic
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            network = openvino.convert_model(self._model[0].auto_model.eval(), example_input=example)
        openvino.save_model(network, directory / IR_FILE, compress_to_fp16=False)

    def _features(self, texts: list[str]) -> dict:
        features = self._model.preprocess(texts)
        return {name: value for name, value in features.items() if hasattr(value, "shape")}

    def encode(self, texts: list[str], batch_size: int) -> np.ndarray:
        """Unit-norm float32 rows in the order of `texts` (at least one); similar lengths are batched
        together."""
        import torch

        order = np.argsort([-len(text) for text in texts], kind="stable")
        rows: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in range(0, len(texts), batch_size):
            batch = order[start : start + batch_size]
            features = self._features([texts[i] for i in batch])
            inputs = {name: features[name].numpy() for name in self._inputs}
            hidden = np.asarray(self._network(inputs)[0], dtype=np.float32)
            pooled = {
                "attention_mask": features["attention_mask"],
                "token_embeddings": torch.from_numpy(hidden),
            }
            for module in list(self._model)[1:]:
                pooled = module(pooled)
            for i, vector in zip(batch, pooled["sentence_embedding"].numpy(), strict=True):
                rows[i] = vector
        return np.stack(rows).astype(np.float32)
