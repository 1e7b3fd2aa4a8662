"""Training benchmark: SFT and DPO throughput in tokens/s on this machine, with the real TRL trainers.

Measures, in one run, on SmolLM2-135M-Instruct (the offline base) and the shipped pool's train split:
  * SFT with LoRA (the recipe's settings), and SFT with full fine-tuning as the baseline: the ratio says
    what LoRA saves in time (its saving in memory is larger);
  * DPO with LoRA on pairs of pool stories (chosen) against their first half (rejected): each pair is two
    sequences forward and backward plus the reference policy's forward pass, so its tokens/s over SFT's
    says what a DPO token costs against an SFT token.
Tokens are those that were not padding. The first step of each run is warm-up (allocations, kernel
choice) and is excluded. CPU time is shared with whatever else runs: the load average is printed.

    python bench/bench_training.py [--steps 3] [--batch-size 8]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from storytelling.api.pools import builtin_pools
from storytelling.training import models, steps
from storytelling.training.data import pool_examples
from storytelling.training.layout import RunLayout
from storytelling.training.records import write_jsonl
from storytelling.training.settings import DPOSettings, ModelSettings, OptimSettings, SFTSettings


def timed_callback():
    """A trainer callback adding up tokens and seconds of every step after the first (the warm-up)."""
    from transformers import TrainerCallback

    class Timed(TrainerCallback):
        def __init__(self) -> None:
            self.tokens, self.seconds = 0, 0.0
            self._start, self._seen = 0.0, 0

        def on_step_begin(self, args, state, control, **kwargs):
            self._start, self._seen = time.perf_counter(), state.num_input_tokens_seen

        def on_step_end(self, args, state, control, **kwargs):
            if state.global_step > 1:
                self.tokens += state.num_input_tokens_seen - self._seen
                self.seconds += time.perf_counter() - self._start

    return Timed()


def sft_rate(root: Path, full: bool, step_count: int, batch: int) -> float:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    layout = RunLayout(root)
    settings = SFTSettings(
        model=ModelSettings(full=full),
        optim=OptimSettings(max_steps=step_count + 1, batch_size=batch, save_steps=10**6),
    )
    rows = [e.record() for e in pool_examples(builtin_pools()[0])]
    dataset = Dataset.from_list([{"prompt": r["prompt"], "completion": r["completion"]} for r in rows])
    base = models.resolve_base("")
    tokenizer, model = models.load(base, settings.model)
    timed = timed_callback()
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(**steps.trainer_arguments(settings.optim, settings.model, layout.checkpoints("sft"))),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=None if full else models.lora_config(settings.model),
        callbacks=[timed],
    )
    trainer.train()
    return timed.tokens / timed.seconds


def dpo_rate(root: Path, step_count: int, batch: int) -> float:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    settings = DPOSettings(optim=OptimSettings(max_steps=step_count + 1, batch_size=batch, save_steps=10**6))
    examples = [e for e in pool_examples(builtin_pools()[0]) if e.theme]
    pairs = [
        {
            "prompt": e.record()["prompt"],
            "chosen": [{"role": "assistant", "content": e.story}],
            "rejected": [{"role": "assistant", "content": e.story[: len(e.story) // 2]}],
        }
        for e in examples
    ]
    write_jsonl(root / "pairs.jsonl", pairs)
    base = models.resolve_base("")
    tokenizer, model = models.load(base, settings.model)
    from peft import get_peft_model

    model = get_peft_model(model, models.lora_config(settings.model))
    timed = timed_callback()
    trainer = DPOTrainer(
        model=model,
        args=DPOConfig(
            **steps.trainer_arguments(settings.optim, settings.model, RunLayout(root).checkpoints("dpo")),
            beta=settings.beta,
        ),
        train_dataset=Dataset.from_list(pairs),
        processing_class=tokenizer,
        callbacks=[timed],
    )
    trainer.train()
    return timed.tokens / timed.seconds


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=3, help="measured steps per run (after one warm-up step)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=8, help="SFT examples per step (DPO: half, in pairs)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-training-") as tmp:
        root = Path(tmp)
        full = sft_rate(root / "full", True, args.steps, args.batch_size)
        lora = sft_rate(root / "lora", False, args.steps, args.batch_size)
        dpo = dpo_rate(root / "dpo", args.steps, max(args.batch_size // 2, 1))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; SmolLM2-135M-Instruct, float32")
    print(f"SFT full fine-tuning (baseline): {full:8.1f} tokens/s")
    print(f"SFT LoRA r=8 (the recipe):       {lora:8.1f} tokens/s   x{lora / full:.2f} vs full")
    print(f"DPO LoRA r=8 (the recipe):       {dpo:8.1f} tokens/s   x{dpo / lora:.2f} vs SFT LoRA")


if __name__ == "__main__":
    main()
