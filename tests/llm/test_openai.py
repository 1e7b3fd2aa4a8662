"""OpenAIChatEngine against a real vLLM server (slow), and its error policy against dead and failing endpoints."""

from __future__ import annotations

import time

import httpx
import pytest

from storytelling.llm import ChatMessage, SamplingParams
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, InvalidArgument, NotFound, Unavailable
from storytelling.runtime.process import free_port
from tests.engines.vllm import SERVED_MODEL

ASK = [ChatMessage("user", "Describe a busy kitchen in one sentence.")]


@pytest.mark.slow
async def test_chat_against_vllm(vllm_server):
    engine = OpenAIChatEngine(vllm_server.base_url, SERVED_MODEL)
    try:
        assert await engine.ready() == (True, "")
        done = await engine.chat(ASK, SamplingParams(temperature=0.7, max_tokens=24, seed=3, top_logprobs=2))
        assert done.text and done.model == SERVED_MODEL
        assert done.finish_reason in ("stop", "length") and 0 < done.completion_tokens <= 24
        assert done.prompt_tokens > 5
        assert len(done.logprobs) == done.completion_tokens
        assert all(t.logprob <= 0 and len(t.top) == 2 for t in done.logprobs)
        cut = await engine.chat(ASK, SamplingParams(temperature=0.0, max_tokens=16))
        assert cut.finish_reason == "length" and cut.completion_tokens == 16
    finally:
        await engine.aclose()


@pytest.mark.slow
async def test_vllm_client_errors_are_not_retried(vllm_server):
    engine = OpenAIChatEngine(vllm_server.base_url, SERVED_MODEL, backoff_s=5.0)
    unknown = OpenAIChatEngine(vllm_server.base_url, "no-such-model")
    try:
        started = time.monotonic()
        with pytest.raises(InvalidArgument, match=r"answered 400: .*max_tokens"):
            await engine.chat(ASK, SamplingParams(max_tokens=100_000))
        with pytest.raises(NotFound, match="no-such-model"):
            await unknown.chat(ASK, SamplingParams(max_tokens=16))
        assert time.monotonic() - started < 5.0  # no backoff sleep happened
        ready, detail = await unknown.ready()
        assert not ready and "does not serve model 'no-such-model'" in detail
    finally:
        await engine.aclose()
        await unknown.aclose()


async def test_dead_endpoint_is_unavailable_naming_it_after_retries():
    url = f"http://127.0.0.1:{free_port()}/v1"
    engine = OpenAIChatEngine(url, "m", max_retries=2, backoff_s=0.01)
    try:
        with pytest.raises(Unavailable, match=rf"engine {url}/chat/completions is unreachable"):
            await engine.chat(ASK, SamplingParams())
        ready, detail = await engine.ready()
        assert not ready and url in detail
    finally:
        await engine.aclose()


def _scripted(statuses: list[int], seen: list[int]) -> httpx.MockTransport:
    """An HTTP endpoint that answers `statuses` in turn: the one way to make a server fail on cue."""

    def answer(request: httpx.Request) -> httpx.Response:
        status = statuses[min(len(seen), len(statuses) - 1)]
        seen.append(status)
        if status != 200:
            return httpx.Response(status, json={"error": {"message": f"status {status}"}})
        return httpx.Response(
            200,
            json={
                "model": "m",
                "choices": [{"message": {"content": "ok"}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            },
        )

    return httpx.MockTransport(answer)


@pytest.mark.parametrize("transient", [429, 500, 502, 503])
async def test_transient_statuses_are_retried_with_backoff(transient):
    seen: list[int] = []
    engine = OpenAIChatEngine(
        "http://engine/v1", "m", backoff_s=0.01, transport=_scripted([transient] * 2 + [200], seen)
    )
    done = await engine.chat(ASK, SamplingParams())
    assert (done.text, done.prompt_tokens, seen) == ("ok", 3, [transient, transient, 200])


async def test_retries_are_bounded_and_client_errors_final():
    seen: list[int] = []
    engine = OpenAIChatEngine(
        "http://engine/v1", "m", max_retries=2, backoff_s=0.01, transport=_scripted([503], seen)
    )
    with pytest.raises(Unavailable, match="answered 503"):
        await engine.chat(ASK, SamplingParams())
    assert seen == [503, 503, 503]
    seen.clear()
    engine = OpenAIChatEngine("http://engine/v1", "m", backoff_s=0.01, transport=_scripted([422, 200], seen))
    with pytest.raises(InvalidArgument, match="answered 422: status 422"):
        await engine.chat(ASK, SamplingParams())
    assert seen == [422]


async def test_deadline_bounds_the_call_and_the_backoff():
    seen: list[int] = []
    engine = OpenAIChatEngine("http://engine/v1", "m", backoff_s=10.0, transport=_scripted([503], seen))
    started = time.monotonic()
    with deadlines.scope(0.5), pytest.raises(Unavailable):
        await engine.chat(ASK, SamplingParams())
    assert seen == [503] and time.monotonic() - started < 1.0  # no 10 s sleep past the deadline
    with deadlines.scope(0.0), pytest.raises(DeadlineExceeded, match="no time left"):
        await engine.chat(ASK, SamplingParams())
