"""The comparison report: base, SFT and SFT+DPO (and a teacher when configured), each prompted naive,
CoR-guided and short, on prompts from the pool's test split, written and scored by the services.

Stories are written by a story service started for the report with every storyteller as a named engine
and no regeneration (`--max-attempts 0`), so the acceptance rate is that of a single try: a story counts
as accepted when it passed every check as written; one that only passed once salvaged (cut, or
multi-moment kept) is measured but not accepted, and one nothing could be made of is neither. Each test
story gives one prompt: its setting as the theme, and in CoR-guided mode three exemplars sampled from the
test split; the same seed per prompt for every storyteller, so all see the same exemplars.

Measures, all from the evaluation service over gRPC, per storyteller and mode over the stories returned:
dimensions covered (text-side), KNN diversity and Vendi score within the set, novelty against the whole
pool, the largest similarity to any training story (memorisation), distinct-2, repetition, length; and
alignment and complexity when a painter and a judge are configured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from storytelling.api import vocabulary
from storytelling.api.pools import Pool, PoolEntry
from storytelling.client import (
    AsyncEvaluationClient,
    AsyncRenderClient,
    AsyncStoryClient,
    FailedPreconditionError,
)
from storytelling.llm import EngineSpec
from storytelling.story.core import derive_seed
from storytelling.story.prompts import PROMPTS, Mode
from storytelling.training import charts, scoring
from storytelling.training.data import TRAIN
from storytelling.training.layout import RunLayout
from storytelling.training.records import file_hash, write_json, write_jsonl
from storytelling.v1 import common_pb2, story_pb2

TEST = "test"
MODES = (Mode.NAIVE, Mode.COR_GUIDED, Mode.SHORT)
DIMENSIONS = 7
# A story at least this similar to a training story is counted as a (near) copy of it.
MEMORISED = 0.9
LABELS = {"base": "base", "sft": "SFT", "dpo": "SFT+DPO", "teacher": "teacher"}


@dataclass(frozen=True)
class Written:
    storyteller: str
    mode: str
    prompt_id: str
    theme: str
    seed: int
    text: str  # "" when nothing could be made of the output
    accepted: bool
    reason: str  # why the single try was rejected ("" when accepted)
    completion_tokens: int
    model: str = ""  # the engine's model that wrote it (for vLLM, the served adapter name)
    exemplar_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Row:
    storyteller: str
    mode: str
    prompts: int
    acceptance: float
    returned: int
    coverage: float | None
    diversity: float | None
    vendi_score: float | None
    novelty: float | None
    max_train_similarity: float | None
    memorised: int | None
    distinct_2: float | None
    repetition: float | None
    words: float | None
    alignment: float | None
    complexity: float | None
    image_side: str


def test_prompts(pool: Pool, limit: int) -> list[PoolEntry]:
    entries = sorted(pool.candidates(TEST), key=lambda e: e.id)
    if not entries:
        raise ValueError(f"pool: {pool.name!r} has no {TEST!r} split to prompt with")
    return entries[:limit] if limit else entries


async def write_all(
    client: AsyncStoryClient,
    storytellers: Sequence[str],
    prompts: Sequence[PoolEntry],
    *,
    pool_name: str,
    seed: int,
    max_tokens: int,
    temperature: float,
    concurrency: int = 16,
) -> list[Written]:
    gate = asyncio.Semaphore(concurrency)

    async def one(storyteller: str, mode: Mode, number: int, entry: PoolEntry) -> Written:
        prompt_seed = derive_seed(seed, "report", number)
        options = story_pb2.StoryRequestOptions(
            mode=vocabulary.parse(vocabulary.StoryMode, mode.value),
            pool=pool_name,
            engine=storyteller,
            theme=entry.setting,
            split=TEST if mode is Mode.COR_GUIDED else "",
            sampling=common_pb2.SamplingParams(max_tokens=max_tokens, temperature=temperature),
        )
        common = {
            "storyteller": storyteller,
            "mode": mode.value,
            "prompt_id": entry.id,
            "theme": entry.setting,
        }
        async with gate:
            try:
                story = (await client.write_story(options, seed=prompt_seed, timeout=3600)).story
            except FailedPreconditionError as error:
                return Written(
                    **common,
                    seed=prompt_seed,
                    text="",
                    accepted=False,
                    reason=str(error),
                    completion_tokens=0,
                )
        p = story.provenance
        return Written(
            **common,
            seed=prompt_seed,
            text=story.text,
            accepted=not p.rejected,
            reason=p.rejected[0].reason if p.rejected else "",
            completion_tokens=p.completion_tokens,
            model=p.engine.model,
            exemplar_ids=tuple(e.id for e in p.exemplars),
        )

    return list(
        await asyncio.gather(
            *(
                one(storyteller, mode, number, entry)
                for storyteller in storytellers
                for mode in MODES
                for number, entry in enumerate(prompts)
            )
        )
    )


async def measure_condition(
    evaluation: AsyncEvaluationClient,
    written: Sequence[Written],
    pool: Pool,
    render: AsyncRenderClient | None,
    seed: int,
) -> Row:
    first = written[0]
    stories = [w.text for w in written if w.text]
    base = {
        "storyteller": first.storyteller,
        "mode": first.mode,
        "prompts": len(written),
        "acceptance": sum(w.accepted for w in written) / len(written),
        "returned": len(stories),
    }
    if len(stories) < 2:
        empty = {k: None for k in Row.__dataclass_fields__ if k not in base}
        return Row(**{**base, **empty, "image_side": "fewer than two stories"})
    images = await scoring.paint(render, stories, seed) if render is not None else None
    measured = await scoring.measure(
        evaluation, stories, reference=[e.story for e in pool.entries], images=images
    )
    to_train = await scoring.max_similarity(evaluation, stories, [e.story for e in pool.candidates(TRAIN)])
    per = measured.stories
    aligned = [m.alignment for m in per if m.alignment is not None]
    complex_ = [m.complexity for m in per if m.complexity is not None]
    return Row(
        **base,
        coverage=statistics.fmean(m.dimensions_covered for m in per),
        diversity=measured.diversity,
        vendi_score=measured.vendi_score,
        novelty=statistics.fmean(1.0 - m.max_similarity for m in per),
        max_train_similarity=max(to_train),
        memorised=sum(s >= MEMORISED for s in to_train),
        distinct_2=measured.distinct_2,
        repetition=statistics.fmean(m.repetition for m in per),
        words=statistics.fmean(m.words for m in per),
        alignment=statistics.fmean(aligned) if aligned else None,
        complexity=statistics.fmean(complex_) if complex_ else None,
        image_side=measured.image_side
        if images is not None
        else "not run: no painter configured (--render-address)",
    )


def headline(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Trained over base on acceptance and coverage: the Mini-Storyteller as deployed (SFT+DPO with the
    short prompt it was trained for) against the base with each prompt, from the same run."""
    by = {(r.storyteller, r.mode): r for r in rows}
    trained = by.get(("dpo", Mode.SHORT.value)) or by.get(("sft", Mode.SHORT.value))
    if trained is None:
        return []
    lines = []
    for mode in MODES:
        base = by.get(("base", mode.value))
        if base is None:
            continue
        lines.append(
            {
                "storyteller": trained.storyteller,
                "trained": f"{LABELS[trained.storyteller]} ({PROMPTS[Mode.SHORT].version})",
                "base": f"base ({PROMPTS[mode].version})",
                "acceptance": [
                    trained.acceptance,
                    base.acceptance,
                    _ratio(trained.acceptance, base.acceptance),
                ],
                "coverage": [trained.coverage, base.coverage, _ratio(trained.coverage, base.coverage)],
            }
        )
    return lines


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a is not None and b else None


def table(rows: Sequence[Row]) -> str:
    header = (
        "| storyteller | prompt | accepted (1 try) | returned | dims covered /7 | KNN diversity | Vendi | "
        "novelty vs pool | max sim. to train | near copies | distinct-2 | repetition | words | "
        "alignment | complexity |"
    )
    lines = [header, "|" + "---|" * 15]
    for r in rows:
        cells = [
            LABELS.get(r.storyteller, r.storyteller),
            PROMPTS[Mode(r.mode)].version,
            f"{r.acceptance:.0%}",
            f"{r.returned}/{r.prompts}",
            _f(r.coverage, "{:.2f}"),
            _f(r.diversity, "{:.3f}"),
            _f(r.vendi_score, "{:.1f}"),
            _f(r.novelty, "{:.3f}"),
            _f(r.max_train_similarity, "{:.3f}"),
            _f(r.memorised, "{}"),
            _f(r.distinct_2, "{:.3f}"),
            _f(r.repetition, "{:.3f}"),
            _f(r.words, "{:.0f}"),
            _f(r.alignment, "{:.2f}", "not run"),
            _f(r.complexity, "{:.2f}", "not run"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _f(value: float | int | None, fmt: str, missing: str = "n/a") -> str:
    return missing if value is None else fmt.format(value)


def plots(rows: Sequence[Row]) -> dict[str, str]:
    groups = list(dict.fromkeys(LABELS.get(r.storyteller, r.storyteller) for r in rows))
    series = [PROMPTS[m].version for m in MODES]

    def values(attribute: str, scale: float = 1.0) -> dict[tuple[str, str], float | None]:
        result = {}
        for r in rows:
            value = getattr(r, attribute)
            result[(LABELS.get(r.storyteller, r.storyteller), PROMPTS[Mode(r.mode)].version)] = (
                None if value is None else value * scale
            )
        return result

    return {
        "acceptance.svg": charts.grouped_bars(
            "Stories accepted on the first try",
            groups,
            series,
            values("acceptance"),
            maximum=1.0,
            fmt="{:.0%}",
        ),
        "coverage.svg": charts.grouped_bars(
            "Reasoning dimensions covered (text-side, of 7)", groups, series, values("coverage"), maximum=7.0
        ),
        "novelty.svg": charts.grouped_bars(
            "Novelty against the whole pool (1 - similarity to the nearest story)",
            groups,
            series,
            values("novelty"),
            maximum=1.0,
            fmt="{:.3f}",
        ),
        "memorisation.svg": charts.grouped_bars(
            "Largest similarity to any training story",
            groups,
            series,
            values("max_train_similarity"),
            maximum=1.0,
        ),
        "distinct2.svg": charts.grouped_bars(
            "Distinct-2 over the set", groups, series, values("distinct_2"), maximum=1.0, fmt="{:.3f}"
        ),
        "diversity.svg": charts.grouped_bars(
            "KNN diversity within the set", groups, series, values("diversity"), maximum=1.0, fmt="{:.3f}"
        ),
    }


def markdown(rows: Sequence[Row], head: list[dict[str, Any]], info: dict[str, Any]) -> str:
    lines = [
        "# Mini-Storytellers: comparison report",
        "",
        f"Generated by `{info['command']}` on {info['finished']} ({info['machine']}).",
        f"Prompts: {info['prompts']} from the `{TEST}` split of `{info['pool']}` (theme: the test story's "
        "setting; CoR-guided exemplars from the test split), one try each, "
        f"max {info['max_tokens']} tokens, temperature {info['temperature']}, seed {info['seed']}.",
        f"Storytellers: {', '.join(f'{LABELS.get(k, k)} = `{v}`' for k, v in info['storytellers'].items())}.",
        "",
        "## Headline: trained over base, same run",
        "",
    ]
    for h in head:
        acc, cov = h["acceptance"], h["coverage"]
        lines.append(
            f"- {h['trained']} over {h['base']}: acceptance {_x(acc)} ({acc[0]:.0%} vs {acc[1]:.0%}), "
            f"dimension coverage {_x(cov)} ({_f(cov[0], '{:.2f}')} vs {_f(cov[1], '{:.2f}')} of 7)"
        )
    lines += ["", "## All storytellers and prompts", "", table(rows), ""]
    image_side = sorted({r.image_side for r in rows if r.image_side})
    if image_side:
        lines += [f"Image-side evaluators: {'; '.join(image_side)}.", ""]
    lines += [
        "Accepted: passed every story check on the single try. Returned: accepted or salvaged, the stories "
        "measured. Near copies: stories with cosine similarity >= "
        f"{MEMORISED} to a training story (all-MiniLM-L6-v2).",
        "",
        "## Plots",
        "",
    ]
    lines += [f"![{name}]({name})" for name in plots(rows)]
    lines += [
        "",
        f"Generation took {info['generation_seconds']:.0f} s, evaluation {info['evaluation_seconds']:.0f} s.",
        "",
    ]
    return "\n".join(lines)


def _x(values: list[float | None]) -> str:
    """ "x1.50" for [trained, base, ratio]; says why when there is no ratio."""
    trained, base, ratio = values
    if ratio is not None:
        return f"x{ratio:.2f}"
    if trained is None or base is None:
        return "n/a (fewer than two stories to measure)"
    return "n/a (base is 0)"


def add_parser(actions: argparse._SubParsersAction) -> None:
    from storytelling.training.cli import entry

    parser = actions.add_parser(
        "report", help="compare base, SFT and SFT+DPO (and a teacher) on the test split"
    )
    parser.add_argument("--run", type=Path, required=True, help="the training run whose adapters to compare")
    parser.add_argument(
        "--out", type=Path, required=True, help="report directory (markdown, JSON, SVG plots)"
    )
    parser.add_argument("--pool", default="storytelling_v1")
    parser.add_argument("--base-model", default="", help="the run's base model (default: offline SmolLM2)")
    parser.add_argument("--teacher", default="", help="a teacher engine as JSON (EngineSpec), compared too")
    parser.add_argument("--prompts", type=int, default=0, help="test prompts to use; 0: the whole test split")
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--server", choices=["vllm", "embedded"], default="vllm")
    parser.add_argument(
        "--vllm-url",
        default="",
        help="a running vLLM (OpenAI-compatible /v1 URL) serving the base as `base` and the run's adapters "
        "as `sft` and `dpo`, instead of starting one",
    )
    parser.add_argument("--evaluation-address", default="", help="a running EvaluationService (with a judge)")
    parser.add_argument("--render-address", default="", help="a RenderService, for the image-side evaluators")
    parser.set_defaults(func=entry(report_command))


def report_command(args: argparse.Namespace) -> int:
    rows, head, info = asyncio.run(run_report(args))
    print(table(rows))
    for h in head:
        acc, cov = h["acceptance"], h["coverage"]
        print(f"headline: {h['trained']} over {h['base']}: acceptance {_x(acc)}, coverage {_x(cov)}")
    print(f"report written to {args.out / 'report.md'}")
    return 0


async def run_report(args: argparse.Namespace) -> tuple[list[Row], list[dict[str, Any]], dict[str, Any]]:
    from storytelling.runtime.process import start_service_process
    from storytelling.training import models
    from storytelling.training.cli import load_pool
    from storytelling.training.local import evaluation_address, evaluation_client, model_servers, served

    layout = RunLayout(args.run)
    pool = load_pool(args.pool)
    prompts = test_prompts(pool, args.prompts)
    trained = {name: layout.exported(name) for name in ("sft", "dpo") if layout.exported(name).is_dir()}
    if not trained:
        raise FileNotFoundError(f"{args.run}: no trained storyteller; run `storytelling train recipe` first")
    base = models.resolve_base(args.base_model)
    logs = args.run / "logs" / "report"
    servers = (
        contextlib.nullcontext({name: served(args.vllm_url, name) for name in ["base", *trained]})
        if args.vllm_url
        else model_servers(args.server, base.path, {"base": None, **trained}, logs)
    )
    with evaluation_address(args.evaluation_address, logs) as address, servers as specs:
        if args.teacher:
            specs["teacher"] = EngineSpec.model_validate_json(args.teacher)
        engines = json.dumps({name: spec.model_dump(exclude_defaults=True) for name, spec in specs.items()})
        # One try per story (no regeneration), every storyteller a named engine, the report's pool loaded.
        service_args = ["--engines", engines, "--default-engine", "base", "--max-attempts", "0"]
        service_args += ["--concurrency", "16", "--default-pool", pool.name]
        if Path(args.pool).is_file():
            service_args += ["--pool-files", json.dumps([str(args.pool)])]
        story = start_service_process("storytelling.story", args=service_args, log_path=logs / "story.log")
        try:
            story.wait_serving(900)
            started = time.perf_counter()
            async with AsyncStoryClient(story.address) as client:
                written = await write_all(
                    client,
                    list(specs),
                    prompts,
                    pool_name=pool.name,
                    seed=args.seed,
                    max_tokens=args.max_tokens,
                    temperature=args.temperature,
                )
        finally:
            story.stop()
        generated = time.perf_counter() - started
        render = AsyncRenderClient(args.render_address, timeout=600) if args.render_address else None
        async with evaluation_client(address) as evaluation:
            rows = [
                await measure_condition(
                    evaluation,
                    [w for w in written if (w.storyteller, w.mode) == (name, mode.value)],
                    pool,
                    render,
                    args.seed,
                )
                for name in specs
                for mode in MODES
            ]
        if render is not None:
            await render.close()
    head = headline(rows)
    info = {
        "command": "storytelling train report " + " ".join(_argv(args)),
        "finished": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}",
        "pool": pool.name,
        "prompts": len(prompts),
        "max_tokens": args.max_tokens,
        "temperature": args.temperature,
        "seed": args.seed,
        "storytellers": {
            "base": base.id,
            **{k: str(v) for k, v in trained.items()},
            **({"teacher": "configured"} if args.teacher else {}),
        },
        "adapters_sha256": {k: file_hash(_weights(v)) for k, v in trained.items() if _weights(v).is_file()},
        "generation_seconds": generated,
        "evaluation_seconds": time.perf_counter() - started - generated,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "stories.jsonl", (asdict(w) for w in written))
    write_json(args.out / "report.json", {"info": info, "headline": head, "rows": [asdict(r) for r in rows]})
    for name, svg in plots(rows).items():
        (args.out / name).write_text(svg)
    (args.out / "report.md").write_text(markdown(rows, head, info))
    return rows, head, info


def _weights(path: Path) -> Path:
    return path / "adapter_model.safetensors"


def _argv(args: argparse.Namespace) -> list[str]:
    shown = []
    for key in ("run", "out", "prompts", "max_tokens", "temperature", "seed", "server"):
        shown += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    return shown
