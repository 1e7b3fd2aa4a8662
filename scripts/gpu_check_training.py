"""GPU check of the Mini-Storyteller recipe at the 0.5-3B scale: one command, a few minutes on one GPU.

No hub is reachable from the GPU machines, so the base is a RANDOM-weight model with the architecture and
size of Qwen2.5-1.5B-Instruct (built from its config, SmolLM2's tokenizer and chat template): the numbers
say whether the recipe's settings fit and how fast it trains at that scale, never how well it writes.
It runs, unchanged, the same commands as the offline recipe with the GPU settings of
docs/mini-storytellers.md, on a copy of the shipped pool:
  data (train split), sft (LoRA, bfloat16, a few steps), dpo (sampling in-process on the GPU, a few
  steps), then prints tokens/s and peak GPU memory per stage.

    python scripts/gpu_check_training.py [--steps 6] [--out /tmp/gpu-check]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

# Qwen2.5-1.5B-Instruct's shape (config.json on the hub): 1.5B parameters with its own vocabulary.
QWEN_1_5B = {
    "hidden_size": 1536,
    "intermediate_size": 8960,
    "num_hidden_layers": 28,
    "num_attention_heads": 12,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    "rope_theta": 1000000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": True,
}
GPU_SETTINGS = ["--device", "cuda", "--dtype", "bfloat16", "--lora-r", "16", "--lora-alpha", "32"]
GPU_SETTINGS += ["--batch-size", "16", "--max-length", "512"]


def build_base(target: Path) -> Path:
    import torch
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from storytelling.llm.smollm2 import materialize

    tokenizer = AutoTokenizer.from_pretrained(materialize())
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        **QWEN_1_5B,
    )
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = Qwen2ForCausalLM(config).to(torch.bfloat16)
    print(
        f"base: random Qwen2.5-1.5B-shaped model, {sum(p.numel() for p in model.parameters()) / 1e9:.2f}B parameters"
    )
    model.save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


def run(stage: str, run_dir: Path, args: list[str]) -> float:
    started = time.perf_counter()
    command = [sys.executable, "-m", "storytelling.training", stage, "--run", str(run_dir), *args]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("/tmp/gpu-check-training"))
    args = parser.parse_args()
    base = build_base(args.out / "base")
    run_dir = args.out / "run"
    model = ["--base-model", str(base), *GPU_SETTINGS, "--max-steps", str(args.steps), "--save-steps", "3"]
    seconds = {"data": run("data", run_dir, [])}
    seconds["sft"] = run("sft", run_dir, model)
    dpo = [
        "--sampler",
        "embedded",
        "--prompts",
        "4",
        "--per-prompt",
        "2",
        "--max-tokens",
        "64",
        "--margin",
        "0",
    ]
    seconds["dpo"] = run("dpo", run_dir, [*model, *dpo])
    for stage in ("sft", "dpo"):
        metrics = json.loads((run_dir / stage / "metrics.json").read_text())
        print(
            f"{stage}: {metrics['global_step']} steps, {metrics['tokens_per_second']} tokens/s, "
            f"peak GPU memory {metrics.get('peak_gpu_gib', 'n/a')} GiB, {seconds[stage]:.0f} s with start-up"
        )


if __name__ == "__main__":
    main()
