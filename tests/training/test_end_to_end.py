"""A tiny end-to-end run on the CPU: data, a few SFT and DPO steps, the adapter served by the embedded engine
and by the vLLM CPU server under its own name, and the comparison report through the services (slow)."""

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from storytelling.api.pools import load_pool
from storytelling.llm import ChatMessage, SamplingParams
from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.runtime.process import start_service_process
from storytelling.stack.vllm import VLLMServer, lora_args, start_vllm
from storytelling.training import cli
from storytelling.training.layout import RunLayout
from storytelling.training.records import file_hash, read_json, read_jsonl

pytestmark = [pytest.mark.slow, pytest.mark.own_engines]  # vLLM serving the adapters

PROMPT = [
    ChatMessage("system", "You write descriptions of storytelling images."),
    ChatMessage("user", "Write a description of a storytelling image. Theme: a night market"),
]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, small_pool: Path, evaluation_service: str) -> RunLayout:
    layout = RunLayout(tmp_path_factory.mktemp("run"))
    common = [
        "--run",
        str(layout.root),
        "--pool",
        str(small_pool),
        "--evaluation-address",
        evaluation_service,
    ]
    assert cli.main(["data", *common]) == 0
    tiny = ["--max-steps", "2", "--batch-size", "2", "--max-length", "192", "--save-steps", "1"]
    assert cli.main(["sft", *common, *tiny]) == 0
    sampling = [
        "--prompts",
        "2",
        "--per-prompt",
        "2",
        "--max-tokens",
        "48",
        "--margin",
        "0",
        "--sampler",
        "embedded",
    ]
    assert cli.main(["dpo", *common, *tiny, *sampling]) == 0
    return layout


def test_data_is_the_train_split_with_provenance_and_hash(run: RunLayout, small_pool: Path) -> None:
    pool = load_pool(small_pool)
    rows = read_jsonl(run.sft_data)
    manifest = read_json(run.sft_manifest)
    assert {r["provenance"]["source_id"] for r in rows} <= {e.id for e in pool.candidates("train")}
    assert manifest["data_sha256"] == file_hash(run.sft_data) and manifest["examples"] == len(rows)
    assert manifest["teacher"] == "pool:small/train" and manifest["prompt_version"] == "short/1"
    assert all("dimensions_covered" in r["provenance"]["measures"] for r in rows)


def test_both_stages_trained_resumably_and_exported_adapters(run: RunLayout) -> None:
    for stage in ("sft", "dpo"):
        metrics = read_json(run.metrics(stage))
        assert metrics["global_step"] == 2 and metrics["tokens"] > 0 and metrics["tokens_per_second"] > 0
        assert [c.name for c in sorted(run.checkpoints(stage).iterdir()) if c.is_dir()] == [
            "checkpoint-1",
            "checkpoint-2",
        ]
        config = read_json(run.adapter(stage) / "adapter_config.json")
        assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert (
            config["r"] == 8 and (run.adapter(stage) / "adapter_model.safetensors").stat().st_size < 6_000_000
        )
    sft_hash = read_json(run.metrics("sft"))["data_sha256"]
    assert sft_hash == read_json(run.sft_manifest)["data_sha256"]
    pairs = read_json(run.pairs_manifest)
    assert pairs["samples"] == 4 and pairs["pairs"] >= 1 and pairs["data_sha256"] == file_hash(run.pairs)
    assert read_json(run.metrics("dpo"))["data_sha256"] == pairs["data_sha256"]
    candidates = read_jsonl(run.candidates)
    assert {c["prompt_id"] for c in candidates} == {"dpo-0", "dpo-1"} and all(
        "reward" in c for c in candidates
    )


async def _first_token(engine, prompt=PROMPT) -> tuple[str, float]:
    done = await engine.chat(prompt, SamplingParams(temperature=0.0, max_tokens=8, top_logprobs=1))
    return done.text, done.logprobs[0].logprob


def test_the_embedded_engine_loads_the_adapter_with_peft_and_generates(run: RunLayout) -> None:
    async def both() -> tuple:
        base, tuned = EmbeddedChatEngine(), EmbeddedChatEngine(adapter=run.adapter("dpo"))
        try:
            return await _first_token(base), await _first_token(tuned), tuned.model
        finally:
            await base.aclose()
            await tuned.aclose()

    (_, base_logprob), (text, tuned_logprob), model = asyncio.run(both())
    assert text.strip() and model == "SmolLM2-135M-Instruct+adapter"
    assert tuned_logprob != pytest.approx(base_logprob, abs=1e-6)  # the adapter changes the model


@pytest.fixture(scope="module")
def served(run: RunLayout, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VLLMServer]:
    """vLLM CPU serving the base as `base` and both adapters under their own names (--enable-lora)."""
    from storytelling.llm.smollm2 import materialize

    log = tmp_path_factory.mktemp("vllm") / "vllm.log"
    adapters = {"sft": run.adapter("sft"), "dpo": run.adapter("dpo")}
    flags = lora_args(adapters)
    with start_vllm(materialize(), "base", max_model_len=2048, log_path=log, extra_args=flags) as server:
        yield server


def test_vllm_serves_the_adapter_under_its_own_name(served: VLLMServer) -> None:
    from storytelling.llm.openai import OpenAIChatEngine

    models = httpx.get(f"{served.base_url}/models").json()["data"]
    assert {m["id"]: m.get("parent") for m in models}.items() >= {"sft": "base", "dpo": "base"}.items()

    async def both() -> tuple:
        engines = [OpenAIChatEngine(served.base_url, name) for name in ("base", "dpo")]
        try:
            return [await _first_token(e) for e in engines]
        finally:
            for engine in engines:
                await engine.aclose()

    (_, base_logprob), (text, tuned_logprob) = asyncio.run(both())
    assert text.strip() and tuned_logprob != pytest.approx(base_logprob, abs=1e-6)


@pytest.fixture(scope="module")
def render_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The render service with its offline default painter (the labelled storyboard sketch)."""
    service = start_service_process(
        "storytelling.render", log_path=tmp_path_factory.mktemp("logs") / "render.log"
    )
    try:
        service.wait_serving(300)
        yield service.address
    finally:
        service.stop()


def test_the_report_compares_the_storytellers_through_the_services(
    run: RunLayout,
    served: VLLMServer,
    small_pool: Path,
    evaluation_service: str,
    render_service: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "report"
    code = cli.main(
        ["report", "--run", str(run.root), "--out", str(out), "--pool", str(small_pool), "--prompts", "2"]
        + ["--max-tokens", "128", "--vllm-url", served.base_url, "--evaluation-address", evaluation_service]
        + ["--render-address", render_service]
    )
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    conditions = {(r["storyteller"], r["mode"]) for r in report["rows"]}
    assert conditions == {(s, m) for s in ("base", "sft", "dpo") for m in ("naive", "cor-guided", "short")}
    assert all(r["prompts"] == 2 and 0.0 <= r["acceptance"] <= 1.0 for r in report["rows"])
    # Stories were painted; without a judge the image-side evaluators say why they did not run.
    measured = [r for r in report["rows"] if r["coverage"] is not None]
    assert measured and all(
        "alignment: no key-point extractor LLM configured" in r["image_side"] for r in measured
    )
    assert [h["base"] for h in report["headline"]] == [
        "base (naive/1)",
        "base (cor-guided/1)",
        "base (short/1)",
    ]
    written = read_jsonl(out / "stories.jsonl")
    assert len(written) == 18
    test_ids = {e.id for e in load_pool(small_pool).candidates("test")}
    for story in written:
        assert story["prompt_id"] in test_ids
        if story["text"]:  # the story service chose the engine by name: vLLM's adapter wrote it
            assert story["model"] == story["storyteller"]
        if story["mode"] == "cor-guided" and story["text"]:
            assert set(story["exemplar_ids"]) <= test_ids
    markdown = (out / "report.md").read_text()
    assert "## Headline: trained over base, same run" in markdown and "| SFT+DPO | short/1 |" in markdown
    for plot in ("acceptance.svg", "coverage.svg", "memorisation.svg", "distinct2.svg"):
        assert (out / plot).read_text().startswith("<svg")
