"""The Mini-Storyteller adapter shipped in the repository, and how engine settings name it (`builtin:NAME`)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from storytelling.llm import EngineSpec, adapters


def test_the_shipped_adapter_is_small_names_its_base_and_has_a_model_card():
    shipped = adapters.resolve("builtin:mini-storyteller")
    assert shipped == str(adapters.WEIGHTS / "mini-storyteller")
    files = {p.name: p for p in adapters.WEIGHTS.joinpath("mini-storyteller").iterdir()}
    assert set(files) == {"adapter_config.json", "adapter_model.safetensors", "README.md"}
    assert files["adapter_model.safetensors"].stat().st_size < 8_000_000
    config = json.loads(files["adapter_config.json"].read_text())
    assert config["base_model_name_or_path"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert config["peft_type"] == "LORA" and config["r"] == 8
    card = files["README.md"].read_text()
    for needed in (
        "base_model: HuggingFaceTB/SmolLM2-135M-Instruct",
        "sha256",
        "## Evaluation",
        "make train",
    ):
        assert needed in card


def test_other_adapters_pass_through_and_unknown_builtins_name_the_field():
    assert adapters.resolve("/models/mini") == "/models/mini"
    assert adapters.resolve("someone/mini-storyteller") == "someone/mini-storyteller"
    assert adapters.resolve("") == ""
    with pytest.raises(ValueError, match="unknown builtin adapter 'haiku'; shipped: mini-storyteller"):
        adapters.resolve("builtin:haiku")
    with pytest.raises(ValidationError, match="adapter: unknown builtin adapter 'haiku'"):
        EngineSpec(kind="embedded", adapter="builtin:haiku")
