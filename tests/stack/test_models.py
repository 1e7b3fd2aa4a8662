"""Model sources to local directories: builtins, local paths that fail fast, hub ids through a hub cache
laid out on disk with no network, file selection, and weights checked against their GPU share."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from storytelling.stack.fetch import select_files
from storytelling.stack.models import (
    Gpu,
    ModelError,
    check_gpu,
    resolve_profile,
    resolve_source,
    weights_gib,
)
from storytelling.stack.profiles import load_profile, parse_profile, profiles_dir

ROOT = Path(__file__).resolve().parents[2]
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def test_a_path_that_does_not_exist_fails_fast_naming_the_model(tmp_path: Path):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelError) as error:
        resolve_source(str(missing), role="storyteller")
    assert str(error.value) == (
        f"storyteller model {str(missing)!r}: {missing} does not exist; download the model there or fix "
        "the path in the profile"
    )
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="holds no config.json, model_index.json or adapter_config.json"):
        resolve_source(str(tmp_path / "empty"), role="painter")
    with pytest.raises(
        ModelError,
        match="no such builtin; use one of mini-storyteller, smollm2-135m-instruct, tiny-random-idefics3",
    ):
        resolve_source("builtin:gpt-5", role="judge")


def test_a_profile_with_a_missing_local_model_fails_before_anything_starts(tmp_path: Path):
    data = yaml.safe_load((profiles_dir() / "offline.yaml").read_text())
    data["storyteller"]["model"] = str(tmp_path / "weights")
    with pytest.raises(ModelError, match=r"^storyteller model '.*/weights': .* does not exist"):
        resolve_profile(parse_profile(data))


def test_the_offline_storyteller_resolves_its_shipped_adapter_and_a_missing_one_fails_fast(tmp_path: Path):
    from storytelling.llm import adapters

    shipped = adapters.WEIGHTS / "mini-storyteller"
    assert resolve_source("builtin:mini-storyteller") == shipped
    teller = resolve_profile(load_profile("offline"))["storyteller"]
    assert teller.adapter == shipped and (teller.adapter / "adapter_config.json").is_file()
    data = yaml.safe_load((profiles_dir() / "offline.yaml").read_text())
    data["storyteller"]["adapter"] = str(tmp_path / "adapter")
    with pytest.raises(ModelError, match=r"^storyteller adapter model '.*/adapter': .* does not exist"):
        resolve_profile(parse_profile(data))


def test_select_files_skips_other_frameworks_and_prefers_safetensors_and_the_variant():
    files = [
        "model_index.json", "README.md", "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
        "unet/diffusion_pytorch_model.bin", "unet/diffusion_pytorch_model.onnx", "flax_model.msgpack",
        "vae/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
        "text_encoder/pytorch_model.bin", "sd_xl_base_1.0.safetensors".replace(".safetensors", ".ckpt"),
        "openvino/model.xml",
    ]  # fmt: skip
    assert select_files(files, "fp16") == [
        "README.md", "model_index.json", "text_encoder/model.safetensors", "unet/config.json",
        "unet/diffusion_pytorch_model.fp16.safetensors", "vae/diffusion_pytorch_model.safetensors",
    ]  # fmt: skip
    assert "unet/diffusion_pytorch_model.safetensors" in select_files(files)
    assert "unet/diffusion_pytorch_model.fp16.safetensors" not in select_files(files)
    assert select_files(["config.json", "pytorch_model.bin"]) == ["config.json", "pytorch_model.bin"]


def test_weights_are_measured_as_the_engine_loads_them(tmp_path: Path):
    (tmp_path / "unet").mkdir()
    for name, size in [
        ("unet/diffusion_pytorch_model.safetensors", 2 << 30),
        ("unet/diffusion_pytorch_model.fp16.safetensors", 1 << 30),
        ("unet/diffusion_pytorch_model.bin", 2 << 30),
        ("model_index.json", 10),
    ]:
        with open(tmp_path / name, "wb") as file:
            file.truncate(size)  # sparse: the size counts, the disk is not used
    assert weights_gib(tmp_path) == 2.0
    assert weights_gib(tmp_path, "fp16") == 1.0


def test_weights_that_do_not_fit_their_share_fail_naming_model_and_remedy(tmp_path: Path):
    model = tmp_path / "big-model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with open(model / "model.safetensors", "wb") as file:
        file.truncate(12 << 30)
    data = yaml.safe_load((profiles_dir() / "gpu-24gb.yaml").read_text())
    data["storyteller"]["model"] = str(model)
    data["painter"] = {"engine": "sketch"}
    with pytest.raises(ModelError) as error:
        resolve_profile(parse_profile(data))
    assert str(error.value) == (
        f"storyteller model {str(model)!r}: 12.0 GiB of weights do not fit its 10.5 GiB GPU share in profile "
        "'gpu-24gb'; raise storyteller.gpu_memory_gib (and lower another share), or pick a smaller or "
        "quantized model"
    )


def test_a_gpu_profile_needs_a_gpu_as_large_as_its_plan():
    profile = load_profile("gpu-80gb")
    with pytest.raises(ModelError, match="needs an NVIDIA GPU and nvidia-smi reports none"):
        check_gpu(profile, [])
    with pytest.raises(
        ModelError, match=r"plans 78 GiB of GPU memory but GPU 0 \(NVIDIA L4\) has 22.5 GiB; use a profile"
    ):
        check_gpu(profile, [Gpu(0, "NVIDIA L4", 22.5)])
    h100 = Gpu(0, "NVIDIA H100 80GB HBM3", 79.6)
    assert check_gpu(profile, [h100]) == h100
    assert check_gpu(load_profile("offline"), []) is None


def lay_out_hub_cache(cache: Path, repo_id: str, source: Path) -> None:
    """`source` as the hub's downloader leaves a snapshot: files under snapshots/<commit>/, refs/main."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / COMMIT
    for file in source.rglob("*"):
        if file.is_file():
            target = snapshot / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(file)  # the hub links snapshot files to blobs the same way
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)


RESOLVE_AND_PAINT = textwrap.dedent("""
    from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job
    from storytelling.stack.models import ModelError, resolve_source

    path = resolve_source("tiny-org/tiny-sd", role="painter")
    print("resolved", path)
    engine = DiffusionEngine(EngineConfig(model=str(path), steps=2, width=64, height=64))
    [out] = engine.generate([Job("a boy on a stool", seed=3)])
    print("painted", out.image.shape, out.metadata["random_weights"])
    try:
        resolve_source("tiny-org/not-downloaded", role="painter")
    except ModelError as error:
        print("refused", error)
""")


@pytest.mark.slow
def test_a_hub_id_resolves_through_the_hub_cache_and_loads_with_the_local_path_code(
    tiny_painter: Path, tmp_path: Path
):
    """No network: HF_HUB_OFFLINE and a hub cache laid out on disk, in a fresh interpreter so the hub
    library reads them as a user's shell would set them."""
    lay_out_hub_cache(tmp_path / "hub", "tiny-org/tiny-sd", tiny_painter)
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "hub"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE_AND_PAINT], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0] == f"resolved {tmp_path / 'hub' / 'models--tiny-org--tiny-sd' / 'snapshots' / COMMIT}"
    assert lines[1] == "painted (64, 64, 3) True"  # the marker file came through the cache too
    assert lines[2].startswith("refused painter model 'tiny-org/not-downloaded': not in the hub cache (")
    assert "HF_HUB_OFFLINE is set or there is no network" in lines[2]
