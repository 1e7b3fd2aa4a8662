"""A profile translated into engine launches and service flags, without starting anything."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storytelling.evaluation.settings import EvaluationSettings
from storytelling.runtime.config import ConfigError
from storytelling.stack.models import Gpu, ModelError, ResolvedModel
from storytelling.stack.profiles import load_profile, parse_profile
from storytelling.stack.wiring import check_environment, plan_engines, service_configs
from storytelling.story.service import StorySettings

URLS = {"storyteller": "http://127.0.0.1:9001/v1", "judge": "http://127.0.0.1:9002/v1"}


def resolved(
    profile_name: str, random_roles: tuple[str, ...] = (), adapters=None
) -> dict[str, ResolvedModel]:
    profile = load_profile(profile_name)
    return {
        role: ResolvedModel(
            role,
            model.model,
            Path(f"/models/{role}"),
            role in random_roles,
            1.0,
            (adapters or {}).get(role, {}),
            Path(f"/adapters/{role}") if getattr(model, "adapter", "") else None,
        )
        for role, model in profile.models().items()
        if model.engine not in ("openai", "sketch")
    }


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_cpu_engines_wires_vllm_and_triton_and_labels_random_weights():
    profile = load_profile("cpu-engines")
    models = resolved("cpu-engines", random_roles=("judge", "painter"))
    plan = plan_engines(profile, models, gpu=None)
    assert [(v.role, v.served_name, v.options["device"], v.options["kv_cache_gib"]) for v in plan.vllm] == [
        ("storyteller", "smollm2-135m", "cpu", 1),
        ("judge", "tiny-idefics3-random", "cpu", 1),
    ]
    assert plan.triton["model"] == "/models/painter" and plan.triton["steps"] == "4"
    configs = service_configs(profile, models, URLS, "127.0.0.1:8001")
    story = configs["story"].args
    assert json.loads(flag(story, "--engines")) == {
        "vllm": {
            "kind": "openai", "base_url": URLS["storyteller"], "model": "smollm2-135m",
            "max_concurrency": 8, "timeout_s": 600.0,
        }
    }  # fmt: skip
    assert flag(story, "--default-mode") == "naive" and flag(story, "--max-tokens") == "192"
    evaluation = configs["evaluation"].args
    extractor = json.loads(flag(evaluation, "--extractors"))["extractor"]
    judge = json.loads(flag(evaluation, "--judges"))["judge"]
    assert (
        extractor["base_url"] == URLS["storyteller"]
        and flag(evaluation, "--extractor-output") == "json_schema"
    )
    assert "random_weights" not in extractor
    assert judge["base_url"] == URLS["judge"] and judge["random_weights"] is True
    assert configs["render"].args == ["--triton-url", "127.0.0.1:8001", "--default-painter", "triton"]
    assert flag(evaluation, "--judge-output") == "json_schema"
    StorySettings.load(story)  # the story service accepts exactly these flags
    EvaluationSettings.load(evaluation)  # and the evaluation service these


def test_offline_runs_everything_in_process():
    profile = load_profile("offline")
    configs = service_configs(profile, resolved("offline"), {}, "")
    engines = json.loads(flag(configs["story"].args, "--engines"))
    assert engines == {
        "embedded": {
            "kind": "embedded",
            "model": "/models/storyteller",
            "adapter": "/adapters/storyteller",
        }
    }
    StorySettings.load(configs["story"].args)  # the story service accepts the adapter it is given
    assert configs["evaluation"].args == [] and configs["render"].args == ["--default-painter", "sketch"]
    assert plan_engines(profile, resolved("offline"), None).vllm == []


def test_gpu_shares_become_vllm_fractions_of_the_gpu_it_finds():
    profile = load_profile("gpu-80gb")
    plan = plan_engines(profile, resolved("gpu-80gb"), Gpu(0, "NVIDIA H200", 139.8))
    fractions = {v.role: v.options["gpu_memory_utilization"] for v in plan.vllm}
    assert fractions == {"storyteller": round(37 / 139.8, 4), "judge": round(19 / 139.8, 4)}
    assert all(v.options["device"] == "cuda" and v.options["eager"] is False for v in plan.vllm)
    assert plan.triton["model"] == "/models/painter" and plan.triton["guidance_scale"] == "0.0"


def test_lora_adapters_are_served_by_vllm_and_offered_as_story_engines():
    data = load_profile("cpu-engines").model_dump(exclude_defaults=True)
    data["storyteller"]["lora_adapters"] = {"mini-sft": {"source": "/adapters/sft"}}
    data["storyteller"]["max_lora_rank"] = 12
    profile = parse_profile(data)
    models = resolved("cpu-engines", adapters={"storyteller": {"mini-sft": Path("/adapters/sft")}})
    [teller, _] = plan_engines(profile, models, None).vllm
    extra = teller.options["extra_args"]
    assert extra[extra.index("--lora-modules") + 1] == "mini-sft=/adapters/sft" and "--enable-lora" in extra
    # vLLM accepts only some ranks: 12 becomes the next one up.
    assert extra[extra.index("--max-lora-rank") + 1] == "16"
    engines = json.loads(flag(service_configs(profile, models, URLS)["story"].args, "--engines"))
    assert engines["mini-sft"]["model"] == "mini-sft" and engines["vllm"]["model"] == "smollm2-135m"


def test_remote_endpoints_come_from_the_environment_and_keys_never_reach_flags():
    profile = load_profile("remote")
    with pytest.raises(
        ModelError, match="^storyteller: environment variable STORYTELLING_LLM_BASE_URL is not set"
    ):
        check_environment(profile, {})
    environ = {
        "STORYTELLING_LLM_BASE_URL": "https://llm.example/v1",
        "STORYTELLING_LLM_API_KEY": "sk-llm",
        "STORYTELLING_VLM_BASE_URL": "https://vlm.example/v1",
        "STORYTELLING_VLM_MODEL": "qwen3-vl-235b",
        "STORYTELLING_IMAGE_BASE_URL": "https://images.example/v1",
        "STORYTELLING_IMAGE_API_KEY": "sk-image",
    }
    check_environment(profile, environ)
    configs = service_configs(profile, {}, {}, environ=environ)
    story = json.loads(flag(configs["story"].args, "--engines"))["remote"]
    assert story["base_url"] == "https://llm.example/v1" and story["model"] == "gpt-4.1-mini"
    assert story["api_key_env"] == "STORYTELLING_LLM_API_KEY"
    judge = json.loads(flag(configs["evaluation"].args, "--judges"))["judge"]
    assert judge["model"] == "qwen3-vl-235b"  # the environment overrides the profile's model
    render = configs["render"]
    assert flag(render.args, "--openai-base-url") == "https://images.example/v1"
    assert render.env == {"STORYTELLING_RENDER_OPENAI_API_KEY": "sk-image"}
    assert not any("sk-" in arg for config in configs.values() for arg in config.args)


def test_a_mode_the_story_service_does_not_know_is_refused_at_its_start():
    with pytest.raises(ConfigError, match="default_mode"):
        StorySettings.load(["--default-mode", "poetic"])
