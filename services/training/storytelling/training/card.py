"""Model cards: what a trained storyteller is, what it was trained on and how, how well it does, and the
command that reproduces it. Written with every exported model and with the adapter shipped in the repo."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from storytelling.story.prompts import PROMPTS, SHORT_INSTRUCTION, Mode
from storytelling.training.layout import RunLayout, Stage
from storytelling.training.records import read_json

REPRODUCE = (
    "make train-report   # the offline recipe (storytelling train recipe), then the report\n"
    "python -m storytelling.training ship --run runs/train/offline --stage {stage} "
    "--to services/llm/storytelling/llm/weights/mini-storyteller --report docs/mini-storytellers/report.json"
)
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


def model_card(layout: RunLayout, name: str, stage: Stage, report: dict[str, Any] | None = None) -> str:
    """The card of the model `stage` exported: an SFT model's card says nothing of a later DPO stage."""
    sft = read_json(layout.metrics("sft"))
    dpo = read_json(layout.metrics("dpo")) if stage == "dpo" else None
    final = dpo or sft
    lora = final["settings"]["model"]["lora"]
    data = sft.get("data_manifest") or {}
    lines = [
        "---",
        f"base_model: {final['base_id']}",
        "library_name: peft",
        "license: apache-2.0",
        f"tags: [lora, sft, {'dpo, ' if dpo else ''}storytelling, storytelling-painter]",
        "---",
        "",
        f"# {name}",
        "",
        "A Mini-Storyteller of StorytellingPainter: a LoRA adapter that makes a small instruct model write "
        "one-moment descriptions of storytelling images (people, place, time, an event, its cause and "
        "how everyone feels, all shown through visible clues), trained with SFT"
        + (" and then DPO on pairs ranked by the project's evaluation service." if dpo else "."),
        "",
        f"It is trained for the short prompt `{PROMPTS[Mode.SHORT].version}`: the system message of the "
        f'story service and the user message "{SHORT_INSTRUCTION}", optionally followed by '
        '" Theme: <theme>". No rules or exemplars are needed.',
        "",
        "## Base model",
        "",
        f"{final['base']}.",
        "",
        "## Training",
        "",
        f"- SFT data: {sft['examples']} examples, sha256 `{sft['data_sha256']}`, teacher "
        f"`{data.get('teacher', 'unknown')}`, filtered by the story checks and text-side measures "
        f"({data.get('filters', {})}); the pool's test split was never trained on.",
        f"- SFT: LoRA r={lora['r']}, alpha={lora['alpha']}, dropout={lora['dropout']}, targets "
        f"`{lora['target_modules']}`; {_optim(sft)}; {sft['global_step']} steps, "
        f"{sft['tokens_per_second']} tokens/s; final loss {_last_loss(sft)}.",
    ]
    if dpo:
        pairs = dpo.get("pairs_manifest") or {}
        lines.append(
            f"- DPO: {dpo['pairs']} pairs, sha256 `{dpo['data_sha256']}`, sampled from the SFT model "
            f"({pairs.get('samples', '?')} stories, {pairs.get('sampling', {}).get('per_prompt', '?')} per "
            f"prompt), ranked by the reward of `storytelling.training.reward` through the evaluation "
            f"service, margin {pairs.get('pairing', {}).get('margin', '?')}; beta={dpo['settings']['beta']}; "
            f"{_optim(dpo)}; {dpo['global_step']} steps, {dpo['tokens_per_second']} tokens/s."
        )
    lines += ["", "## Evaluation", ""]
    if report:
        lines += _evaluation(report, stage)
    else:
        lines.append("Not evaluated yet: run `storytelling train report`.")
    lines += [
        "",
        "## Use",
        "",
        "- vLLM: `--enable-lora --lora-modules mini-storyteller=<this directory>`, then request the model "
        '`mini-storyteller` (story service engine `{"kind": "openai", "model": "mini-storyteller", ...}`).',
        '- Embedded (peft): story service engine `{"kind": "embedded", "adapter": "<this directory>"}`.',
        "",
        "## Reproduce",
        "",
        "```",
        REPRODUCE.format(stage=stage),
        "```",
        "",
    ]
    return "\n".join(lines)


def write(layout: RunLayout, stage: Stage, name: str = "Mini-Storyteller") -> None:
    """Replaces peft's template card of the model `stage` just exported with this one."""
    (layout.exported(stage) / "README.md").write_text(model_card(layout, name, stage))


def final_stage(layout: RunLayout) -> Stage:
    """The last stage the run finished: what `ship` ships unless told otherwise."""
    return "dpo" if layout.metrics("dpo").is_file() else "sft"


def ship(
    layout: RunLayout, target: Path, name: str, report: dict[str, Any] | None, stage: Stage | None = None
) -> Path:
    """Copies the adapter of `stage` (default: the final one) and its model card to `target` (the
    directory shipped in the repo). Shipping SFT after DPO ran is how a DPO stage that did not beat SFT
    on the report is left out."""
    stage = stage or final_stage(layout)
    if not layout.metrics(stage).is_file():
        raise FileNotFoundError(f"stage: {layout.metrics(stage)} is missing; {stage} has not finished")
    source = layout.exported(stage)
    if not (source / "adapter_config.json").is_file():
        raise ValueError(f"stage: {source} holds no LoRA adapter (a full model is too big to ship)")
    target.mkdir(parents=True, exist_ok=True)
    for file in ADAPTER_FILES:
        shutil.copyfile(source / file, target / file)
    (target / "README.md").write_text(model_card(layout, name, stage, report))
    return target


def _evaluation(report: dict[str, Any], trained: Stage) -> list[str]:
    """The shipped model against the base under each prompt of the report (the same run), then the
    report's headline when it is about the shipped model: the trained model with its own prompt against
    the base with each."""
    rows = {(r["storyteller"], r["mode"]): r for r in report["rows"]}
    lines = []
    for (storyteller, mode), row in rows.items():
        base = rows.get(("base", mode))
        if storyteller == trained and base:
            lines.append(
                f"- {mode} prompt: stories accepted on the first try {row['acceptance']:.0%} vs "
                f"{base['acceptance']:.0%} for the base; reasoning dimensions covered {row['coverage']:.2f} "
                f"vs {base['coverage']:.2f} of 7."
            )
    headlines = [h for h in report["headline"] if h["storyteller"] == trained]
    lines += [""] if headlines else []
    for h in headlines:
        lines.append(
            f"Headline: {h['trained']} over {h['base']}: acceptance x{h['acceptance'][2]:.2f}, "
            f"coverage x{h['coverage'][2]:.2f}."
        )
    info = report.get("info", {})
    lines += [
        "",
        f"Measured by `{info.get('command', 'storytelling train report')}`; full comparison: "
        "`docs/mini-storytellers/report.md`.",
    ]
    return lines


def _optim(metrics: dict[str, Any]) -> str:
    o = metrics["settings"]["optim"]
    return (
        f"lr {o['learning_rate']}, batch {o['batch_size']}x{o['grad_accum']}, epochs {o['epochs']}, "
        f"max length {o['max_length']}, seed {o['seed']}"
    )


def _last_loss(metrics: dict[str, Any]) -> str:
    losses = metrics.get("losses") or []
    return f"{losses[-1]['loss']:.3f}" if losses else "n/a"
