"""What the SFT and DPO stages share: trainer arguments from the recipe, resumption, and the metrics file.

A stage checkpoints every `save_steps` steps (model, optimizer, scheduler, RNG and data order) and, when
rerun on the same run directory, resumes from the last complete checkpoint: a killed job (a preempted
pod, Ctrl-C) loses at most `save_steps` steps. Throughput counts the tokens that were not padding.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from storytelling.training import models
from storytelling.training.records import read_json, write_json
from storytelling.training.settings import ModelSettings, OptimSettings

log = logging.getLogger(__name__)


def trainer_arguments(optim: OptimSettings, model: ModelSettings, output_dir: Path) -> dict[str, Any]:
    """Keyword arguments shared by TRL's SFTConfig and DPOConfig."""
    device = models.device(model)
    return {
        "output_dir": str(output_dir),
        "num_train_epochs": optim.epochs,
        "max_steps": optim.max_steps,
        "per_device_train_batch_size": optim.batch_size,
        "gradient_accumulation_steps": optim.grad_accum,
        "learning_rate": optim.learning_rate,
        "lr_scheduler_type": "cosine",
        "warmup_steps": optim.warmup_ratio,
        "max_length": optim.max_length,
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": optim.save_steps,
        "save_total_limit": 2,
        "seed": optim.seed,
        "data_seed": optim.seed,
        "report_to": "none",
        "use_cpu": device == "cpu",
        "bf16": models.dtype_name(model) == "bfloat16" and device == "cuda",
        "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        "disable_tqdm": True,
        # TRL turns it on unless told: slower by a third, for memory the offline recipe does not need.
        "gradient_checkpointing": model.gradient_checkpointing,
    }


def train(trainer: Any, checkpoints: Path) -> dict[str, Any]:
    """Trains, resuming from the last checkpoint if there is one; returns the session's metrics."""
    resume = models.last_checkpoint(checkpoints)
    if resume is not None:
        log.info("resuming from %s", resume)
    resumed = read_json(resume / "trainer_state.json") if resume else {}
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    history = [entry for entry in trainer.state.log_history if "loss" in entry]
    tokens = int(trainer.state.num_input_tokens_seen) - int(resumed.get("num_input_tokens_seen", 0))
    runtime = result.metrics["train_runtime"]
    return {
        "resumed_from_step": int(resumed.get("global_step", 0)),
        "global_step": trainer.state.global_step,
        "seconds": round(time.perf_counter() - start, 1),
        "train_seconds": round(runtime, 1),
        # This session's tokens (not padding), so a resumed run reports its own throughput.
        "tokens": tokens,
        "tokens_per_second": round(tokens / runtime, 2) if runtime else None,
        "train_loss": result.metrics.get("train_loss"),
        "losses": [{"step": e["step"], "loss": e["loss"]} for e in history],
        **peak_memory(),
    }


def peak_memory() -> dict[str, float]:
    """Peak resident memory of this process, and peak GPU memory allocated when training on a GPU."""
    import resource

    import torch

    peaks = {"peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)}
    if torch.cuda.is_available():
        peaks["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return peaks


def save_metrics(
    path: Path, stage: str, metrics: dict[str, Any], settings: Any, extra: dict[str, Any]
) -> None:
    write_json(path, {"stage": stage, **metrics, **extra, "settings": settings.model_dump(mode="json")})
