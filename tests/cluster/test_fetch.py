"""The init containers' model download: which files are fetched, and what happens without network.

Nothing here can reach the Hugging Face Hub, so downloads themselves are not run: file selection is
tested on file lists recorded from real repositories, and the offline path on a local directory laid out
as a hub cache.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from storytelling.stack import fetch

# stabilityai/stable-diffusion-xl-base-1.0 (abridged: every kind of file it holds).
SDXL = [
    ".gitattributes", "LICENSE.md", "README.md", "model_index.json", "sd_xl_base_1.0.safetensors",
    "sd_xl_base_1.0_0.9vae.safetensors", "sd_xl_offset_example-lora_1.0.safetensors",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors",
    "text_encoder/pytorch_model.bin", "text_encoder/model.onnx", "text_encoder/openvino_model.bin",
    "text_encoder_2/config.json", "text_encoder_2/model.safetensors", "text_encoder_2/model.fp16.safetensors",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/model.onnx", "unet/model.onnx_data",
    "unet/diffusion_flax_model.msgpack", "unet/openvino_model.xml",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors",
    "vae_1_0/diffusion_pytorch_model.fp16.safetensors", "onnx/unet/model.onnx",
]  # fmt: skip
# meta-llama style: original/ holds the same weights in another format.
LLM = ["config.json", "generation_config.json", "model-00001-of-00002.safetensors",
       "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json",
       "tokenizer_config.json", "original/consolidated.00.pth", "original/params.json"]  # fmt: skip
# An older repository with pickled weights only: they are what the engine loads.
PICKLES = ["config.json", "pytorch_model.bin", "tokenizer.json"]


def test_a_diffusers_repository_keeps_one_copy_of_each_component():
    selected = fetch.select_files(SDXL)
    assert "unet/diffusion_pytorch_model.safetensors" in selected
    assert "vae_1_0/diffusion_pytorch_model.fp16.safetensors" in selected, "its only weights"
    assert "text_encoder/model.fp16.safetensors" not in selected
    assert "text_encoder/pytorch_model.bin" not in selected
    assert not [f for f in selected if "onnx" in f or "openvino" in f or f.endswith(".msgpack")]
    assert "sd_xl_base_1.0.safetensors" not in selected, "a single-file checkpoint beside the layout"
    assert {"model_index.json", "tokenizer/vocab.json", "scheduler/scheduler_config.json"} <= set(selected)


def test_the_variant_the_painter_loads_replaces_the_default_weights():
    """gpu-24gb's painter loads SDXL's fp16 variant: those files are fetched instead of the fp32 ones."""
    selected = fetch.select_files(SDXL, "fp16")
    for component in ("text_encoder/model", "text_encoder_2/model", "unet/diffusion_pytorch_model",
                      "vae/diffusion_pytorch_model"):  # fmt: skip
        assert f"{component}.fp16.safetensors" in selected and f"{component}.safetensors" not in selected
    assert "vae_1_0/diffusion_pytorch_model.fp16.safetensors" in selected
    assert not [f for f in selected if "onnx" in f or f.endswith((".bin", ".msgpack"))]
    assert fetch.select_files(SDXL, "bf16") == fetch.select_files(SDXL), "no such variant: the defaults"


def test_an_llm_keeps_its_safetensors_shards_and_drops_the_originals():
    assert fetch.select_files(LLM) == sorted(f for f in LLM if not f.startswith("original/"))


def test_pickles_are_kept_when_they_are_the_only_weights():
    assert fetch.select_files(PICKLES) == sorted(PICKLES)


def test_local_paths_and_the_tiny_pipeline_need_no_download(tmp_path):
    assert fetch.fetch(str(tmp_path), tmp_path / "cache") == str(tmp_path)
    assert fetch.fetch("tiny-random", tmp_path / "cache") == "tiny-random"
    with pytest.raises(fetch.FetchError, match="model /no/such/dir: no such path"):
        fetch.fetch("/no/such/dir", tmp_path / "cache")


def cached_repo(cache: Path, repo: str) -> Path:
    """A model in the Hugging Face cache layout, as a previous download leaves it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = root / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(commit)
    return snapshot


def test_without_network_a_cached_model_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snapshot = cached_repo(tmp_path, "acme/storyteller")
    assert Path(fetch.fetch("acme/storyteller", tmp_path)) == snapshot


def test_without_network_a_missing_model_fails_naming_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert os.environ["HF_HUB_OFFLINE"] == "1"
    with pytest.raises(fetch.FetchError, match=r"model acme/absent: cannot reach the Hugging Face Hub"):
        fetch.fetch("acme/absent", tmp_path)
    cached_repo(tmp_path, "acme/present")
    assert fetch.main(["--cache-dir", str(tmp_path), "acme/present", "acme/absent"]) == 1
    out, err = capsys.readouterr()
    assert "acme/present: " in out and "fetch: model acme/absent" in err
