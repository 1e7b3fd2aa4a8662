"""Configuration: environment and flags, flags win, structured values as JSON, every bad field named."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, Field

from storytelling.runtime.config import ConfigError, ServiceSettings


class Engine(BaseModel):
    url: str


class DemoSettings(ServiceSettings):
    model_config = ServiceSettings.env("DEMO")
    engines: dict[str, Engine] = Field(default_factory=dict)
    pools: list[str] = Field(default_factory=list)
    threshold: float = Field(0.5, ge=0, le=1)


def test_flags_override_environment(monkeypatch):
    monkeypatch.setenv("STORYTELLING_DEMO_PORT", "6000")
    monkeypatch.setenv("STORYTELLING_DEMO_THRESHOLD", "0.25")
    settings = DemoSettings.load(["--port", "7000"])
    assert settings.port == 7000
    assert settings.threshold == 0.25


def test_structured_values_are_json_in_env_and_flags(monkeypatch):
    monkeypatch.setenv("STORYTELLING_DEMO_POOLS", '["a", "b"]')
    settings = DemoSettings.load(["--engines", '{"vllm": {"url": "http://127.0.0.1:8000/v1"}}'])
    assert settings.pools == ["a", "b"]
    assert settings.engines["vllm"].url == "http://127.0.0.1:8000/v1"


def test_every_bad_field_is_reported_with_its_source(monkeypatch):
    monkeypatch.setenv("STORYTELLING_DEMO_THRESHOLD", "7")
    with pytest.raises(ConfigError) as err:
        DemoSettings.load(["--metrics-port", "-1", "--log-level", "LOUD"])
    message = str(err.value)
    assert "threshold (STORYTELLING_DEMO_THRESHOLD)" in message
    assert "metrics_port (--metrics-port)" in message
    assert "log_level (--log-level)" in message


def test_malformed_json_flag_is_named():
    with pytest.raises(ConfigError, match=r"engines \(--engines\): not valid JSON"):
        DemoSettings.load(["--engines", "{vllm"])
