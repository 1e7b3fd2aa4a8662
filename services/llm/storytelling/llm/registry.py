"""Engines described as configuration (`EngineSpec`) and built from it, so services list them in settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from storytelling.llm import adapters
from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.llm.engine import ChatEngine
from storytelling.llm.openai import OpenAIChatEngine


class EngineSpec(BaseModel):
    """One configured engine, for example `{"kind": "openai", "base_url": "http://vllm:8000/v1",
    "model": "smollm2-135m"}` or `{"kind": "embedded"}` (SmolLM2-135M-Instruct offline)."""

    kind: Literal["openai", "embedded"]
    # Served model name (openai), or local path / hub id (embedded; empty means the offline default).
    model: str = ""
    # Embedded only: a LoRA adapter (directory, hub id, or builtin:NAME for one shipped in
    # storytelling.llm.adapters) on `model`, loaded with peft. An OpenAI-compatible
    # server serves an adapter under its own name instead (vLLM `--lora-modules NAME=DIR`): put NAME in `model`.
    adapter: str = ""
    base_url: str = ""
    # Name of the environment variable holding the API key, never the key itself.
    api_key_env: str = ""
    max_concurrency: int = Field(default=8, ge=1)
    timeout_s: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0)
    # How to find the engine's replicas behind base_url's host: "none" (the URL as it is), "dns" (every
    # address the name resolves to: a headless Service) or "kubernetes" (its EndpointSlices, watched).
    # Requests go to the least busy replica; max_concurrency then bounds each replica.
    discovery: Literal["none", "dns", "kubernetes"] = "none"
    # The served model has random weights (set by the stack for its tiny test models).
    random_weights: bool = False

    @model_validator(mode="after")
    def _adapter_is_embedded(self) -> "EngineSpec":
        if self.adapter and self.kind != "embedded":
            raise ValueError(
                "adapter: only embedded engines load adapters; serve it with vLLM under its own name "
                "(--lora-modules NAME=DIR) and give that name as model"
            )
        try:
            adapters.resolve(self.adapter)
        except ValueError as error:
            raise ValueError(f"adapter: {error}") from None
        return self


def build_engine(spec: EngineSpec) -> ChatEngine:
    if spec.kind == "embedded":
        return EmbeddedChatEngine(spec.model or None, adapter=adapters.resolve(spec.adapter) or None)
    return OpenAIChatEngine.from_spec(spec)
