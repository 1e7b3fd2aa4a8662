"""Preference optimisation: sample from the SFT model, score through the evaluation service, pair, train.

`collect_pairs` writes the scored samples and the pairs (with provenance and a data hash); `run_dpo`
trains the SFT adapter further with TRL's DPO against a frozen copy of itself (the reference policy),
so the result is again one adapter on the original base, servable under its own name.
"""

from __future__ import annotations

import logging
import random
from dataclasses import asdict
from typing import Any

from storytelling.api.pools import Pool
from storytelling.client import AsyncEvaluationClient, AsyncRenderClient
from storytelling.llm import SamplingParams
from storytelling.training import card, models, steps
from storytelling.training.data import SFT_PROMPT, train_split
from storytelling.training.layout import RunLayout
from storytelling.training.pairs import Scored, build_pairs
from storytelling.training.records import file_hash, read_json, read_jsonl, write_json, write_jsonl
from storytelling.training.reward import RewardWeights, format_check, reward
from storytelling.training.sampling import Prompt, Sampler
from storytelling.training.scoring import measure, paint
from storytelling.training.settings import DPOSettings, SamplingSettings

log = logging.getLogger(__name__)
# Every this-many-th prompt has no theme, as the short prompt may carry none.
PLAIN_EVERY = 4


def dpo_prompts(pool: Pool, settings: SamplingSettings) -> list[Prompt]:
    """Prompts with themes drawn from the train split's settings; the test split's stay unseen."""
    settings_ = [e.setting for e in train_split(pool) if e.setting]
    random.Random(settings.seed).shuffle(settings_)
    return [
        Prompt(
            f"dpo-{i}",
            "" if i % PLAIN_EVERY == PLAIN_EVERY - 1 or not settings_ else settings_[i % len(settings_)],
        )
        for i in range(settings.prompts)
    ]


async def collect_pairs(
    layout: RunLayout,
    settings: DPOSettings,
    policy: Sampler,
    evaluation: AsyncEvaluationClient,
    pool: Pool,
    *,
    render: AsyncRenderClient | None = None,
    weights: RewardWeights = RewardWeights(),
) -> dict[str, Any]:
    """Samples, scores and pairs; writes candidates, pairs and the pairs manifest; returns the manifest."""
    s = settings.sampling
    params = SamplingParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens)
    samples = await policy.sample(dpo_prompts(pool, s), s.per_prompt, params, s.seed)
    checks = [format_check(x.text, x.finish_reason) for x in samples]
    usable = [i for i, c in enumerate(checks) if c.story]
    stories = [checks[i].story for i in usable]
    images = await paint(render, stories, s.seed) if render is not None and stories else None
    measured = (
        await measure(evaluation, stories, reference=[e.story for e in pool.entries], images=images)
        if stories
        else None
    )
    by_sample = dict(zip(usable, measured.stories, strict=True)) if measured else {}
    rewards = [reward(checks[i], by_sample.get(i), weights) for i in range(len(samples))]
    candidates = [
        {
            "prompt_id": x.prompt.id,
            "theme": x.prompt.theme,
            "index": x.index,
            "seed": x.seed,
            "text": x.text,
            "finish_reason": x.finish_reason,
            "format": checks[i].reason or "ok",
            "reward": round(r.score, 4),
            "components": {k: round(v, 4) for k, v in r.components.items()},
        }
        for i, (x, r) in enumerate(zip(samples, rewards, strict=True))
    ]
    write_jsonl(layout.candidates, candidates)
    scored = [Scored(x.prompt.id, x.index, x.text, r.score) for x, r in zip(samples, rewards, strict=True)]
    pairs = build_pairs(scored, margin=settings.pairs.margin, per_prompt=settings.pairs.per_prompt)
    prompts = {x.prompt.id: x.prompt for x in samples}
    data_hash = write_jsonl(
        layout.pairs,
        (
            {
                "prompt": [m.as_template(with_parts=False) for m in prompts[p.prompt_id].messages()],
                "chosen": [{"role": "assistant", "content": p.chosen.text}],
                "rejected": [{"role": "assistant", "content": p.rejected.text}],
                "provenance": {
                    "prompt_id": p.prompt_id,
                    "theme": prompts[p.prompt_id].theme,
                    "chosen": {"index": p.chosen.index, "reward": round(p.chosen.score, 4)},
                    "rejected": {"index": p.rejected.index, "reward": round(p.rejected.score, 4)},
                },
            }
            for p in pairs
        ),
    )
    manifest = {
        "policy": policy.label,
        "prompt_version": SFT_PROMPT.version,
        "pool": pool.name,
        "samples": len(samples),
        "usable": len(usable),
        "pairs": len(pairs),
        "mean_reward": round(sum(r.score for r in rewards) / len(rewards), 4),
        "mean_margin": round(sum(p.margin for p in pairs) / len(pairs), 4) if pairs else None,
        "image_side": (measured.image_side or "ran") if images is not None and measured else "no painter",
        "reward_weights": asdict(weights),
        "sampling": s.model_dump(),
        "pairing": settings.pairs.model_dump(),
        "candidates_sha256": file_hash(layout.candidates),
        "data_sha256": data_hash,
    }
    write_json(layout.pairs_manifest, manifest)
    return manifest


def run_dpo(layout: RunLayout, settings: DPOSettings) -> dict[str, Any]:
    """Trains the SFT model on `layout.pairs`; exports to `layout.adapter("dpo")` (or `model("dpo")`)."""
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    if not layout.pairs.is_file():
        raise FileNotFoundError(
            f"{layout.pairs}: no preference pairs; run `storytelling train dpo` with sampling"
        )
    rows = read_jsonl(layout.pairs)
    if not rows:
        raise ValueError(
            f"{layout.pairs}: no pair reached the margin {settings.pairs.margin}; sample more or lower it"
        )
    dataset = Dataset.from_list([{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in rows])
    sft = layout.exported("sft")
    if settings.model.full:
        tokenizer, model = models.load(models.Base(str(sft), str(sft), str(sft)), settings.model)
        base = models.resolve_base(settings.model.base_model)
    else:
        base = models.resolve_base(settings.model.base_model)
        tokenizer, model = models.load(base, settings.model, adapter=sft)
    config = DPOConfig(
        **steps.trainer_arguments(settings.optim, settings.model, layout.checkpoints("dpo")),
        beta=settings.beta,
    )
    trainer = DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    metrics = steps.train(trainer, layout.checkpoints("dpo"))
    target = layout.model("dpo") if settings.model.full else layout.adapter("dpo")
    models.export(trainer.model, tokenizer, target, base, settings.model)
    extra = {
        "base": base.description,
        "base_id": base.id,
        "sft": str(sft),
        "pairs": len(rows),
        "data_sha256": file_hash(layout.pairs),
        "pairs_manifest": read_json(layout.pairs_manifest) if layout.pairs_manifest.is_file() else None,
        "exported": str(target),
    }
    steps.save_metrics(layout.metrics("dpo"), "dpo", metrics, settings, extra)
    card.write(layout, "dpo")
    return {**metrics, **extra}
