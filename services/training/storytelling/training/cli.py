"""`storytelling train data|sft|dpo|recipe|report|job`: the Mini-Storyteller pipeline from the command line.

Every stage reads and writes one run directory (`--run`, see `layout.py`); rerunning a stage resumes its
training from the last checkpoint. Settings come from the defaults (the offline recipe), a JSON file
(`--config`, {"sft": {...}, "dpo": {...}} in the shape of `settings.py`), then the flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

from storytelling.training.layout import RunLayout
from storytelling.training.settings import DPOSettings, SFTSettings

# flag -> (settings path) for the model and optimiser settings both stages share.
MODEL_FLAGS = {
    "base_model": ("model", "base_model"),
    "full": ("model", "full"),
    "lora_r": ("model", "lora", "r"),
    "lora_alpha": ("model", "lora", "alpha"),
    "device": ("model", "device"),
    "dtype": ("model", "dtype"),
    "epochs": ("optim", "epochs"),
    "max_steps": ("optim", "max_steps"),
    "learning_rate": ("optim", "learning_rate"),
    "batch_size": ("optim", "batch_size"),
    "grad_accum": ("optim", "grad_accum"),
    "max_length": ("optim", "max_length"),
    "save_steps": ("optim", "save_steps"),
    "seed": ("optim", "seed"),
}
DPO_FLAGS = {
    "prompts": ("sampling", "prompts"),
    "per_prompt": ("sampling", "per_prompt"),
    "temperature": ("sampling", "temperature"),
    "max_tokens": ("sampling", "max_tokens"),
    "margin": ("pairs", "margin"),
    "pairs_per_prompt": ("pairs", "per_prompt"),
    "beta": ("beta",),
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser("train", help="train Mini-Storytellers (SFT, DPO) and compare them")
    actions = train.add_subparsers(
        dest="action", required=True, metavar="{data,sft,dpo,recipe,report,ship,job}"
    )
    for name, help_, func in (
        ("data", "build the SFT examples (teacher or the pool's train split)", data_command),
        ("sft", "supervised fine-tuning on the SFT examples", sft_command),
        ("dpo", "sample, score through the evaluation service, pair, and train with DPO", dpo_command),
        ("recipe", "data, sft and dpo in one go (the offline recipe by default)", recipe_command),
    ):
        parser = actions.add_parser(name, help=help_)
        _run_args(parser)
        if name in ("data", "recipe"):
            _data_args(parser)
        if name in ("sft", "dpo", "recipe"):
            _model_args(parser)
        if name in ("dpo", "recipe"):
            _dpo_args(parser)
        parser.set_defaults(func=entry(func))
    ship = actions.add_parser(
        "ship", help="copy a run's adapter (the final one, or --stage) and its model card into a directory"
    )
    ship.add_argument("--run", type=Path, required=True)
    ship.add_argument(
        "--to", type=Path, required=True, help="target directory (e.g. the repo's shipped adapter)"
    )
    ship.add_argument("--report", type=Path, help="report.json whose headline goes into the model card")
    ship.add_argument("--name", default="Mini-Storyteller")
    ship.add_argument(
        "--stage",
        choices=["sft", "dpo"],
        help="the stage whose adapter to ship (default: the last one the run finished)",
    )
    ship.set_defaults(func=entry(ship_command))
    from storytelling.training import k8s, report

    report.add_parser(actions)
    k8s.add_parser(actions)


def _run_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--run", type=Path, required=True, help="run directory (created; reused to resume)")
    parser.add_argument("--config", type=Path, help='JSON settings: {"sft": {...}, "dpo": {...}}')
    parser.add_argument("--pool", default="storytelling_v1", help="built-in pool name, or a pool file")
    parser.add_argument(
        "--evaluation-address", default="", help="a running EvaluationService; default: start one for the run"
    )


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--teacher",
        default="",
        help='teacher engine as JSON, e.g. {"kind": "openai", "base_url": "...", "model": "...", '
        '"api_key_env": "OPENAI_API_KEY"}; default: the train split is the teacher data',
    )
    parser.add_argument("--count", type=int, default=256, help="stories to ask the teacher for")
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--min-dimensions", type=int, default=3, help="fewest dimensions a kept story covers")
    parser.add_argument("--max-repetition", type=float, default=0.1, help="largest repeated-trigram share")
    parser.add_argument(
        "--max-similarity", type=float, default=0.9, help="drop teacher stories this close to a pool story"
    )


def _model_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model and optimiser (both stages)")
    group.add_argument("--base-model", help="hub id or directory; default SmolLM2-135M-Instruct (offline)")
    group.add_argument("--full", action="store_true", default=None, help="full fine-tuning instead of LoRA")
    group.add_argument("--lora-r", type=int)
    group.add_argument("--lora-alpha", type=int)
    group.add_argument("--device", choices=["auto", "cpu", "cuda"])
    group.add_argument("--dtype", choices=["auto", "float32", "bfloat16"])
    group.add_argument("--epochs", type=float)
    group.add_argument("--max-steps", type=int, help="stop after N optimiser steps (overrides epochs)")
    group.add_argument("--learning-rate", type=float)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--grad-accum", type=int)
    group.add_argument("--max-length", type=int)
    group.add_argument("--save-steps", type=int)
    group.add_argument("--seed", type=int)


def _dpo_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("DPO")
    group.add_argument("--prompts", type=int, help="prompts to sample for")
    group.add_argument("--per-prompt", type=int, help="stories sampled per prompt")
    group.add_argument("--temperature", type=float)
    group.add_argument("--max-tokens", type=int)
    group.add_argument("--margin", type=float, help="smallest reward gap of a pair")
    group.add_argument("--pairs-per-prompt", type=int)
    group.add_argument("--beta", type=float)
    group.add_argument(
        "--sampler",
        choices=["vllm", "embedded"],
        default="vllm",
        help="sample from the SFT model served by vLLM (needs .venv-vllm) or in this process with "
        "transformers (on the training device: the choice on a GPU)",
    )
    group.add_argument("--render-address", default="", help="a RenderService: adds the image-side evaluators")
    group.add_argument("--resample", action="store_true", help="sample and pair again even if pairs exist")


def settings(args: argparse.Namespace) -> tuple[SFTSettings, DPOSettings]:
    """Defaults, then `--config`, then the flags, which apply to the stages the command runs."""
    raw: dict[str, Any] = json.loads(args.config.read_text()) if getattr(args, "config", None) else {}
    stages = {"sft": ("sft",), "dpo": ("dpo",)}.get(args.action, ("sft", "dpo"))
    trees = {"sft": raw.get("sft", {}), "dpo": raw.get("dpo", {})}
    for flag, path in MODEL_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            for stage in stages:
                _set(trees[stage], path, value)
    for flag, path in DPO_FLAGS.items():
        value = getattr(args, flag, None)
        if value is not None:
            _set(trees["dpo"], path, value)
    return SFTSettings.model_validate(trees["sft"]), DPOSettings.model_validate(trees["dpo"])


def _set(tree: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def load_pool(name: str):
    from storytelling.api.pools import builtin_pools
    from storytelling.api.pools import load_pool as load_file

    builtin = {p.name: p for p in builtin_pools()}
    if name in builtin:
        return builtin[name]
    path = Path(name)
    if not path.is_file():
        raise ValueError(f"pool: {name!r} is neither a built-in pool ({', '.join(builtin)}) nor a file")
    return load_file(path)


def data_command(args: argparse.Namespace) -> int:
    manifest = asyncio.run(_data(args, RunLayout(args.run)))
    print(json.dumps({k: v for k, v in manifest.items() if k != "rejected_examples"}, indent=2))
    return 0


async def _data(args: argparse.Namespace, layout: RunLayout) -> dict[str, Any]:
    from storytelling.llm import EngineSpec, build_engine
    from storytelling.training.data import Filters, build_sft_data
    from storytelling.training.local import evaluation_address, evaluation_client

    teacher = build_engine(EngineSpec.model_validate_json(args.teacher)) if args.teacher else None
    filters = Filters(args.min_dimensions, args.max_repetition, args.max_similarity)
    try:
        with evaluation_address(args.evaluation_address, layout.root / "logs") as address:
            async with evaluation_client(address) as evaluation:
                return await build_sft_data(
                    layout,
                    load_pool(args.pool),
                    evaluation,
                    teacher=teacher,
                    count=args.count,
                    seed=args.data_seed,
                    filters=filters,
                )
    finally:
        if teacher is not None:
            await teacher.aclose()


def sft_command(args: argparse.Namespace) -> int:
    from storytelling.training.sft import run_sft

    sft, _ = settings(args)
    metrics = run_sft(RunLayout(args.run), sft)
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("losses", "data_manifest")}, indent=2))
    return 0


def dpo_command(args: argparse.Namespace) -> int:
    from storytelling.training.dpo import run_dpo

    layout = RunLayout(args.run)
    _, dpo = settings(args)
    if args.resample or not layout.pairs_manifest.is_file():
        manifest = asyncio.run(_pairs(args, layout, dpo))
        print(json.dumps(manifest, indent=2))
    metrics = run_dpo(layout, dpo)
    print(json.dumps({k: v for k, v in metrics.items() if k not in ("losses", "pairs_manifest")}, indent=2))
    return 0


async def _pairs(args: argparse.Namespace, layout: RunLayout, dpo: DPOSettings) -> dict[str, Any]:
    from storytelling.client import AsyncRenderClient
    from storytelling.training.dpo import collect_pairs
    from storytelling.training.local import evaluation_address, evaluation_client

    sft = layout.exported("sft")
    if not sft.is_dir():
        raise FileNotFoundError(f"{sft}: no SFT model; run `storytelling train sft` first")
    logs = layout.root / "logs"
    with evaluation_address(args.evaluation_address, logs) as address:
        async with _sampler(args, dpo, sft, logs) as policy, evaluation_client(address) as evaluation:
            render = AsyncRenderClient(args.render_address, timeout=600) if args.render_address else None
            try:
                return await collect_pairs(
                    layout, dpo, policy, evaluation, load_pool(args.pool), render=render
                )
            finally:
                if render is not None:
                    await render.close()


@contextlib.asynccontextmanager
async def _sampler(args: argparse.Namespace, dpo: DPOSettings, sft: Path, logs: Path) -> AsyncIterator[Any]:
    """The SFT model to sample from: served by vLLM under its own name, or loaded in this process (on the
    training device, a GPU when there is one)."""
    from storytelling.training import models
    from storytelling.training.local import is_adapter
    from storytelling.training.sampling import EngineSampler, InProcessSampler

    base = models.resolve_base(dpo.model.base_model)
    if args.sampler == "embedded":
        adapter = sft if is_adapter(sft) else None
        tokenizer, model = models.load(
            base if adapter else models.Base(str(sft), base.id, str(sft)), dpo.model, adapter
        )
        if adapter:
            model = model.merge_and_unload()
        yield InProcessSampler(
            tokenizer, model.to(models.device(dpo.model)).eval(), f"transformers:{base.id}+sft"
        )
        return
    from storytelling.llm import build_engine
    from storytelling.training.local import model_servers

    max_len = dpo.optim.max_length + dpo.sampling.max_tokens
    with model_servers("vllm", base.path, {"sft": sft}, logs, max_model_len=max_len) as specs:
        engine = build_engine(specs["sft"])
        try:
            yield EngineSampler(engine)
        finally:
            await engine.aclose()


def recipe_command(args: argparse.Namespace) -> int:
    """Each stage that has finished (its manifest or metrics written) is skipped; one cut short resumes."""
    layout = RunLayout(args.run)
    if not layout.sft_manifest.is_file():
        data_command(args)
    if not layout.metrics("sft").is_file():
        sft_command(args)
    if not layout.metrics("dpo").is_file():
        dpo_command(args)
    print(f"recipe done: {layout.exported('dpo')}")
    return 0


def ship_command(args: argparse.Namespace) -> int:
    from storytelling.training import card

    report = json.loads(args.report.read_text()) if args.report else None
    target = card.ship(RunLayout(args.run), args.to, args.name, report, args.stage)
    size = sum(f.stat().st_size for f in target.iterdir())
    print(f"shipped {target} ({size / 1e6:.1f} MB)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m storytelling.training ...`: the same commands without the SDK's CLI."""
    parser = argparse.ArgumentParser(prog="python -m storytelling.training")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["train", *(argv if argv is not None else sys.argv[1:])])
    try:
        return args.func(args)
    except (ValueError, OSError) as error:
        print(f"storytelling train: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("storytelling train: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


def entry(command: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Wraps a command: logging on, and SIGTERM (a pod evicted, `kill`) unwinding like Ctrl-C, so the
    engines it started are stopped on the way out; the last checkpoint stays, and a rerun resumes."""

    def run(args: argparse.Namespace) -> int:
        configure_logging()
        previous = signal.signal(signal.SIGTERM, _interrupt)
        try:
            return command(args)
        finally:
            signal.signal(signal.SIGTERM, previous)

    return run


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def configure_logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("httpx", "transformers", "datasets", "accelerate"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
