"""Model profiles: the shipped files, the schema and its JSON export, and memory plans that do not add up."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from scripts.profile_schema import render
from storytelling.stack.local import describe_plan
from storytelling.stack.profiles import (
    SCHEMA_FILE,
    ProfileError,
    load_profile,
    parse_profile,
    profile_names,
    profiles_dir,
)

SHIPPED = ["cpu-engines", "gpu-24gb", "gpu-80gb", "offline", "remote"]


def raw(name: str) -> dict:
    return yaml.safe_load((profiles_dir() / f"{name}.yaml").read_text())


def test_the_shipped_profiles_are_exactly_these_and_all_valid():
    assert profile_names() == SHIPPED
    for name in SHIPPED:
        profile = load_profile(name)
        assert profile.name == name and profile.painter.engine


def test_json_schema_export_is_up_to_date_and_validates_every_shipped_file():
    assert SCHEMA_FILE.read_text() == render(), "profile.schema.json is stale: run `make docs`"
    schema = json.loads(SCHEMA_FILE.read_text())
    for name in SHIPPED:
        jsonschema.validate(raw(name), schema)
    with pytest.raises(jsonschema.ValidationError, match="'tpu' is not one of"):
        jsonschema.validate({**raw("offline"), "device": "tpu"}, schema)


def test_gpu_plans_add_up_within_the_gpu():
    for name in ("gpu-24gb", "gpu-80gb"):
        profile = load_profile(name)
        assert profile.gpu is not None
        assert sum(profile.gpu_shares().values()) + profile.gpu.reserve_gib <= profile.gpu.memory_gib
    assert "GPU plan: storyteller 10.5, painter 9.5, reserve 2 = 22 of 22 GiB" in describe_plan(
        load_profile("gpu-24gb")
    )


def test_roles_follow_shared_engines():
    profile = load_profile("cpu-engines")
    assert profile.engine_of("extractor") == ("storyteller", profile.storyteller)
    assert profile.structured_output("extractor") and not profile.structured_output("storyteller")
    assert load_profile("offline").engine_of("judge") is None
    assert load_profile("gpu-24gb").engine_of("judge")[0] == "storyteller"


def edited(name: str, path: str, value: object) -> dict:
    """A shipped profile with one field (dotted path) replaced; None deletes it."""
    data = copy.deepcopy(raw(name))
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[part]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            edited("gpu-24gb", "painter.gpu_memory_gib", 12),
            "gpu.memory_gib: the plan needs 24.5 GiB (storyteller 10.5 + painter 12 + reserve 2) but the "
            "GPU has 22",
        ),
        (
            edited("gpu-80gb", "judge.gpu_memory_gib", 16.5),
            "judge.gpu_memory_gib: Qwen/Qwen3-VL-8B-Instruct has 16.3 GiB of weights, so its share needs "
            "at least 17.3 GiB, not 16.5",
        ),
        (edited("gpu-24gb", "painter.weights_gib", None), "painter.weights_gib: give the size of"),
        (edited("gpu-24gb", "gpu", None), "gpu: a cuda profile needs a memory plan"),
        (edited("cpu-engines", "judge.gpu_memory_gib", 4), "judge.gpu_memory_gib: a cpu profile plans no"),
        (edited("remote", "storyteller.endpoint", None), "storyteller: engine openai needs an endpoint"),
        (edited("offline", "storyteller.modle", "x"), "storyteller.modle: Extra inputs are not permitted"),
        (edited("gpu-24gb", "judge.use", "judge"), "judge.use: a role cannot use itself"),
        (edited("gpu-24gb", "extractor.use", "judge"), "extractor.use: judge has no model of its own"),
        (
            edited("offline", "storyteller.lora_adapters", {"mini": {"source": "/m"}}),
            "lora_adapters need engine vllm",
        ),
        (
            edited("cpu-engines", "storyteller.adapter", "builtin:mini-storyteller"),
            "storyteller: adapter needs engine embedded; a vllm engine serves adapters as lora_adapters",
        ),
        (edited("remote", "judge.endpoint.api_key_env", "my key"), "judge.endpoint.api_key_env: String"),
        (edited("gpu-24gb", "painter.width", 1004), "painter.width: Input should be a multiple of 8"),
        (edited("offline", "device", "tpu"), "device: Input should be 'cpu' or 'cuda'"),
    ],
    ids=[
        "over-the-gpu", "share-below-weights", "no-weights-size", "cuda-without-plan", "cpu-with-share",
        "openai-without-endpoint", "unknown-field", "uses-itself", "uses-a-shared-role", "lora-on-embedded",
        "adapter-on-vllm", "bad-env-name", "width", "device",
    ],
)  # fmt: skip
def test_bad_profiles_are_refused_naming_the_field(data: dict, message: str):
    with pytest.raises(ProfileError) as refused:
        parse_profile(data, source="bad.yaml")
    assert str(refused.value).startswith("bad.yaml: ") and message in str(refused.value)
    assert "\n" not in str(refused.value)


def test_a_file_must_be_named_after_its_profile(tmp_path: Path):
    (tmp_path / "mine.yaml").write_text(yaml.safe_dump(raw("offline")))
    with pytest.raises(ProfileError, match=r"name: 'offline' must equal the file name 'mine'"):
        load_profile(tmp_path / "mine.yaml")
    (tmp_path / "offline.yaml").write_text("name: [unclosed")
    with pytest.raises(ProfileError, match="not valid YAML"):
        load_profile(tmp_path / "offline.yaml")
    with pytest.raises(ProfileError, match="no profile 'gpu-1tb'.*known: cpu-engines, gpu-24gb"):
        load_profile("gpu-1tb")
