"""The sentence embedder's backends on the real all-MiniLM-L6-v2: OpenVINO against float32 torch, the
converted-model cache, and configuration errors that name the field."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError
from storytelling.evaluation.embedder import SentenceEmbedder
from storytelling.evaluation.settings import EvaluationSettings

POOL = Path(__file__).parents[2] / "clients/python/storytelling/api/pools/storytelling_v1.jsonl"


def pool_stories(count: int) -> list[str]:
    lines = POOL.read_text().splitlines()[:count]
    return [json.loads(line)["story"] for line in lines]


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STORYTELLING_CACHE_DIR", str(root))
        yield root


@pytest.fixture(scope="module")
def openvino_embedder(cache: Path) -> SentenceEmbedder:
    embedder = SentenceEmbedder(dtype="bfloat16", backend="openvino", batch_size=8)
    embedder.load()
    return embedder


def test_openvino_agrees_with_float32_torch_row_by_row(openvino_embedder: SentenceEmbedder) -> None:
    # Mixed lengths over several batches: rows are sorted by length inside, and must come back in order.
    texts = [*pool_stories(20), "A dog.", "", "The baker drops a tray; flour covers the floor."]
    reference = SentenceEmbedder(dtype="float32").encode(texts)
    vectors = openvino_embedder.encode(texts)
    assert vectors.shape == (23, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosine = (vectors * reference).sum(axis=1)
    assert cosine.min() >= 0.999, cosine
    # A row swapped with its neighbour would still be unit norm, but not close to its own reference.
    assert float((vectors[0] * reference[1]).sum()) < 0.9


def test_both_backends_return_no_rows_for_no_texts(
    openvino_embedder: SentenceEmbedder, embedder: SentenceEmbedder
) -> None:
    for backend in (openvino_embedder, embedder):
        empty = backend.encode([])
        assert empty.shape == (0, 384) and empty.dtype == np.float32


def test_a_second_load_compiles_the_cached_model_without_converting(
    openvino_embedder: SentenceEmbedder, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import openvino

    converted = sorted(p.relative_to(cache) for p in (cache / "openvino").rglob("*") if p.is_file())
    assert [p.name for p in converted] == ["model.bin", "model.xml"]

    def no_conversion(*args: object, **kwargs: object) -> None:
        raise AssertionError("the model was converted again")

    monkeypatch.setattr(openvino, "convert_model", no_conversion)
    again = SentenceEmbedder(dtype="float32", backend="openvino")
    again.load()
    assert again._openvino.ir_path == openvino_embedder._openvino.ir_path
    assert again.encode(["A dog."]).shape == (1, 384)


def test_unknown_backend_and_openvino_off_the_cpu_name_the_field() -> None:
    with pytest.raises(ValueError, match="embed_backend: expected torch or openvino, got 'onnx'"):
        SentenceEmbedder(backend="onnx")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match="embed_backend: openvino runs on the CPU, not on embed_device 'cuda'"
    ):
        SentenceEmbedder(backend="openvino", device="cuda")


def test_openvino_dtype_must_be_one_openvino_runs(cache: Path) -> None:
    with pytest.raises(ValueError, match="dtype: OpenVINO runs float32 or bfloat16, not 'float16'"):
        SentenceEmbedder(backend="openvino", dtype="float16").load()


def test_settings_reject_openvino_on_a_gpu_and_unknown_backends() -> None:
    with pytest.raises(
        ValidationError, match="embed_backend openvino runs on the CPU, not on embed_device 'cuda'"
    ):
        EvaluationSettings(embed_backend="openvino", embed_device="cuda")
    with pytest.raises(ValidationError, match="embed_backend"):
        EvaluationSettings(embed_backend="onnx")
    assert EvaluationSettings().embed_backend == "torch"
