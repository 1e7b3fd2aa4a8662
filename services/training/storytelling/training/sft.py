"""Supervised fine-tuning with TRL on the SFT examples: completion-only loss, LoRA (or full) weights."""

from __future__ import annotations

import logging
from typing import Any

from storytelling.training import card, models, steps
from storytelling.training.layout import RunLayout
from storytelling.training.records import file_hash, read_json, read_jsonl
from storytelling.training.settings import SFTSettings

log = logging.getLogger(__name__)


def run_sft(layout: RunLayout, settings: SFTSettings) -> dict[str, Any]:
    """Trains on `layout.sft_data`, exports to `layout.adapter("sft")` (or `model("sft")`); returns metrics."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    if not layout.sft_data.is_file():
        raise FileNotFoundError(f"{layout.sft_data}: no SFT data; run `storytelling train data` first")
    rows = read_jsonl(layout.sft_data)
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    base = models.resolve_base(settings.model.base_model)
    tokenizer, model = models.load(base, settings.model)
    config = SFTConfig(
        **steps.trainer_arguments(settings.optim, settings.model, layout.checkpoints("sft")),
        completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if settings.model.full else models.lora_config(settings.model),
    )
    metrics = steps.train(trainer, layout.checkpoints("sft"))
    target = layout.model("sft") if settings.model.full else layout.adapter("sft")
    models.export(trainer.model, tokenizer, target, base, settings.model)
    extra = {
        "base": base.description,
        "base_id": base.id,
        "examples": len(rows),
        "data_sha256": file_hash(layout.sft_data),
        "data_manifest": read_json(layout.sft_manifest) if layout.sft_manifest.is_file() else None,
        "exported": str(target),
    }
    steps.save_metrics(layout.metrics("sft"), "sft", metrics, settings, extra)
    card.write(layout, "sft")
    log.info(
        "SFT done: %s steps, %.1f tokens/s, exported to %s",
        metrics["global_step"],
        metrics["tokens_per_second"],
        target,
    )
    return {**metrics, **extra}
