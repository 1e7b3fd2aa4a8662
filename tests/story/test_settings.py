"""Story service configuration from flags and environment, and the service built from it."""

from __future__ import annotations

import json

import pytest

from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.runtime.config import ConfigError
from storytelling.story.prompts import Mode
from storytelling.story.service import StoryService, StorySettings

VLLM = {"vllm": {"kind": "openai", "base_url": "http://127.0.0.1:8000/v1", "model": "smollm2-135m"}}


def test_defaults_are_the_embedded_engine_and_the_shipped_pool():
    settings = StorySettings.load([])
    assert (settings.port, settings.metrics_port, settings.default_engine) == (50051, 9101, "embedded")
    service = StoryService.from_settings(settings)
    assert isinstance(service.storyteller.engines["embedded"], EmbeddedChatEngine)
    assert service.storyteller.pools.default == "storytelling_v1"


def test_engines_and_pools_from_flags(tmp_path):
    pool = tmp_path / "clinic.csv"
    pool.write_text('img_id,story\n1,"A nurse drops a tray of cups as a toddler giggles."\n')
    settings = StorySettings.load(
        [
            "--engines",
            json.dumps(VLLM),
            "--default-engine",
            "vllm",
            "--pool-files",
            json.dumps([str(pool)]),
            "--max-tokens",
            "200",
        ]
    )
    service = StoryService.from_settings(settings)
    engine = service.storyteller.engines["vllm"]
    assert isinstance(engine, OpenAIChatEngine) and engine.endpoint == "http://127.0.0.1:8000/v1"
    assert service.storyteller.pools.names() == ["storytelling_v1", "clinic"]
    assert service.storyteller.limits.max_tokens == 200


def test_engines_from_the_environment(monkeypatch):
    monkeypatch.setenv("STORYTELLING_STORY_ENGINES", json.dumps(VLLM))
    monkeypatch.setenv("STORYTELLING_STORY_DEFAULT_ENGINE", "vllm")
    assert StorySettings.load([]).engines["vllm"].model == "smollm2-135m"


def test_bad_settings_name_every_field():
    with pytest.raises(ConfigError) as error:
        StorySettings.load(["--temperature", "5", "--engines", '{"x": {"kind": "tgi"}}'])
    assert "temperature (--temperature)" in str(error.value) and "engines.x.kind" in str(error.value)


def test_unknown_default_engine_or_pool_stops_start_up():
    with pytest.raises(ValueError, match="default engine 'vllm' is not among"):
        StoryService.from_settings(StorySettings(default_engine="vllm"))
    with pytest.raises(ValueError, match="default pool 'cogbench'"):
        StoryService.from_settings(StorySettings(default_pool="cogbench"))


def test_an_embedded_engine_names_its_adapter_and_an_openai_engine_cannot():
    mini = {"mini": {"kind": "embedded", "adapter": "/models/mini-storyteller"}}
    service = StoryService.from_settings(
        StorySettings.load(["--engines", json.dumps(mini), "--default-engine", "mini"])
    )
    assert service.storyteller.engines["mini"].model == "SmolLM2-135M-Instruct+mini-storyteller"
    served = {"vllm": {**VLLM["vllm"], "adapter": "/models/mini-storyteller"}}
    with pytest.raises(ConfigError, match="engines.vllm.*adapter: only embedded engines load adapters"):
        StorySettings.load(["--engines", json.dumps(served), "--default-engine", "vllm"])


def test_engine_modes_from_flags_and_bad_modes_name_the_field():
    flags = ["--engines", json.dumps(VLLM), "--default-engine", "vllm", "--engine-modes", '{"vllm": "short"}']
    service = StoryService.from_settings(StorySettings.load(flags))
    assert service.storyteller.engine_modes == {"vllm": Mode.SHORT}
    with pytest.raises(ConfigError, match="engine_modes.vllm"):
        StorySettings.load(["--engine-modes", '{"vllm": "haiku"}'])
