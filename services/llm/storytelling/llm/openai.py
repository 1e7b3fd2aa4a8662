"""Any OpenAI-compatible chat endpoint (vLLM, hosted APIs) over async HTTP.

A semaphore bounds requests in flight: enough for vLLM's continuous batching to fill its batch, few
enough not to queue unboundedly in front of it. Transient failures (connection errors, 429, 5xx) are
retried with exponential backoff inside the caller's deadline; client errors (other 4xx) are not.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import httpx

from storytelling.llm.engine import ChatMessage, Completion, SamplingParams, TokenLogprob
from storytelling.runtime import deadlines
from storytelling.runtime.errors import DeadlineExceeded, InvalidArgument, NotFound, ServiceError, Unavailable

TRANSIENT_STATUS = frozenset({408, 429, 500, 502, 503, 504})


class OpenAIChatEngine:
    kind = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        max_concurrency: int = 8,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        backoff_s: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.endpoint = base_url.rstrip("/")
        self.model = model
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self._semaphore = asyncio.Semaphore(max_concurrency)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            base_url=self.endpoint,
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=max_concurrency, max_keepalive_connections=max_concurrency),
        )

    async def start(self) -> None:
        """Nothing to load: a remote engine may come up after us, so readiness is checked, not required."""

    async def ready(self) -> tuple[bool, str]:
        try:
            response = await self._client.get("/models", timeout=min(5.0, self.timeout_s))
            response.raise_for_status()
        except httpx.HTTPError as error:
            return False, f"engine {self.endpoint} is unreachable: {error or type(error).__name__}"
        served = [m.get("id") for m in response.json().get("data", [])]
        if self.model not in served:
            return False, f"engine {self.endpoint} does not serve model {self.model!r} (serves {served})"
        return True, ""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        body = self._body(messages, params)
        async with self._semaphore:
            payload = await self._post_with_retries("/chat/completions", body)
        return parse_completion(payload, self.model)

    async def aclose(self) -> None:
        await self._client.aclose()

    def _body(self, messages: Sequence[ChatMessage], params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_dict() for m in messages],
            "temperature": params.temperature,
            "top_p": params.top_p,
            "max_tokens": params.max_tokens,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if params.top_logprobs is not None:
            body["logprobs"] = True
            body["top_logprobs"] = params.top_logprobs
        return body

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.endpoint}{path}"
        for attempt in range(self.max_retries + 1):
            timeout = self._timeout()
            try:
                response = await self._client.post(path, json=body, timeout=timeout)
            except httpx.TimeoutException as error:
                raise DeadlineExceeded(f"engine {url} did not answer within {timeout:.1f} s") from error
            except httpx.TransportError as error:
                failure: ServiceError = Unavailable(
                    f"engine {url} is unreachable: {error or type(error).__name__}"
                )
            else:
                if response.is_success:
                    return response.json()
                failure = _status_error(url, response)
                if response.status_code not in TRANSIENT_STATUS:
                    raise failure
            delay = self.backoff_s * 2**attempt
            left = deadlines.remaining()
            if attempt == self.max_retries or (left is not None and left <= delay):
                raise failure
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")  # the loop always returns or raises

    def _timeout(self) -> float:
        left = deadlines.remaining()
        if left is None:
            return self.timeout_s
        if left <= 0:
            raise DeadlineExceeded(f"no time left to call engine {self.endpoint}")
        return min(self.timeout_s, left)


def _status_error(url: str, response: httpx.Response) -> ServiceError:
    detail = _error_message(response)
    message = f"engine {url} answered {response.status_code}: {detail}"
    if response.status_code == 404:
        return NotFound(message)
    if response.status_code in TRANSIENT_STATUS:
        return Unavailable(message)
    return InvalidArgument(message)


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json().get("error", {})
        return str(error.get("message") if isinstance(error, dict) else error)[:500]
    except ValueError:
        return response.text[:500]


def parse_completion(payload: dict[str, Any], model: str) -> Completion:
    choice = payload["choices"][0]
    usage = payload.get("usage") or {}
    content = (choice.get("logprobs") or {}).get("content")
    logprobs = (
        [
            TokenLogprob(
                token=item["token"],
                logprob=item["logprob"],
                top={alt["token"]: alt["logprob"] for alt in item.get("top_logprobs") or []},
            )
            for item in content
        ]
        if content is not None
        else None
    )
    return Completion(
        text=choice["message"].get("content") or "",
        finish_reason="length" if choice.get("finish_reason") == "length" else "stop",
        prompt_tokens=usage.get("prompt_tokens", 0),
        completion_tokens=usage.get("completion_tokens", 0),
        model=payload.get("model", model),
        logprobs=logprobs,
    )
