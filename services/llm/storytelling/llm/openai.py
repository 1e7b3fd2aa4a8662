"""Any OpenAI-compatible chat endpoint (vLLM, hosted APIs) over async HTTP.

Requests go through an `EndpointPool`: one replica (the base URL) by default, or every ready replica of a
Kubernetes Service with `discovery`, each bounded to `max_concurrency` requests in flight: enough for
vLLM's continuous batching to fill its batch, few enough not to queue unboundedly in front of it.
Transient failures (connection errors, 429, 5xx) are retried with exponential backoff inside the caller's
deadline, on another replica when one is available; client errors (other 4xx) are not retried.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import httpx

from storytelling.llm.engine import ChatMessage, Completion, SamplingParams, TokenLogprob
from storytelling.llm.pool import Discovery, EndpointPool
from storytelling.runtime import deadlines
from storytelling.runtime.endpoints import EndpointWatch
from storytelling.runtime.errors import DeadlineExceeded, InvalidArgument, NotFound, ServiceError, Unavailable

if TYPE_CHECKING:
    from storytelling.llm.registry import EngineSpec

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
        discovery: Discovery = "none",
        watch: EndpointWatch | None = None,
        random_weights: bool = False,
    ) -> None:
        self.endpoint = base_url.rstrip("/")
        self.model = model
        self.random_weights = random_weights
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.pool = EndpointPool(self.endpoint, discovery, per_replica=max_concurrency, watch=watch)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(
            headers=headers,
            timeout=timeout_s,
            transport=transport,
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=max_concurrency),
        )

    @classmethod
    def from_spec(cls, spec: EngineSpec) -> Self:
        if not spec.base_url or not spec.model:
            raise ValueError("an openai engine needs base_url and model")
        return cls(
            spec.base_url,
            spec.model,
            api_key=os.environ.get(spec.api_key_env) if spec.api_key_env else None,
            max_concurrency=spec.max_concurrency,
            timeout_s=spec.timeout_s,
            max_retries=spec.max_retries,
            discovery=spec.discovery,
            random_weights=spec.random_weights,
        )

    async def start(self) -> None:
        """Finds the replicas; nothing to load: a remote engine may come up after us, so readiness is
        checked, not required."""
        await self.pool.start()

    async def ready(self) -> tuple[bool, str]:
        """Ready while at least one replica serves the model; the reason names every one that does not."""
        replicas = self.pool.replicas
        answers = await asyncio.gather(*(self._serves_model(r.url) for r in replicas))
        problems = [problem for problem in answers if problem]
        if len(problems) == len(replicas):
            return False, "; ".join(problems)
        return True, ""

    async def _serves_model(self, url: str) -> str:
        """'' when the replica at `url` lists the model, else what is wrong."""
        try:
            response = await self._client.get(f"{url}/models", timeout=min(5.0, self.timeout_s))
            response.raise_for_status()
        except httpx.HTTPError as error:
            return f"engine {url} is unreachable: {error or type(error).__name__}"
        served = [m.get("id") for m in response.json().get("data", [])]
        if self.model not in served:
            return f"engine {url} does not serve model {self.model!r} (serves {served})"
        return ""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        payload = await self._post_with_retries("/chat/completions", self._body(messages, params))
        return parse_completion(payload, self.model)

    async def aclose(self) -> None:
        await self.pool.close()
        await self._client.aclose()

    def _body(self, messages: Sequence[ChatMessage], params: SamplingParams) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.as_openai() for m in messages],
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
        if params.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": params.json_schema.name, "schema": params.json_schema.schema},
            }
        return body

    async def _post_with_retries(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        for attempt in range(self.max_retries + 1):
            async with self.pool.lease() as replica:
                url = f"{replica.url}{path}"
                timeout = self._timeout()
                try:
                    response = await self._client.post(url, json=body, timeout=timeout)
                except httpx.TimeoutException as error:
                    raise DeadlineExceeded(f"engine {url} did not answer within {timeout:.1f} s") from error
                except httpx.TransportError as error:
                    failure: ServiceError = Unavailable(
                        f"engine {url} is unreachable: {error or type(error).__name__}"
                    )
                    self.pool.failed(replica)
                else:
                    if response.is_success:
                        return response.json()
                    failure = _status_error(url, response)
                    if response.status_code not in TRANSIENT_STATUS:
                        raise failure
            # Another replica can take the retry at once; the same one gets time to recover.
            delay = 0.0 if self.pool.others_available(replica) else self.backoff_s * 2**attempt
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
