"""A model profile translated into engine launches and service settings: the one module that knows both.

`plan_engines` says which vLLM servers and which Triton painter a profile needs (with their flags and
config.pbtxt parameters); `service_configs` gives each service the flags and environment that point it
at those engines, at remote endpoints, or at its in-process models. The local stack launcher runs the
result; a Helm chart makes the same translation from the same profile files.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from storytelling.stack.models import Gpu, ModelError, ResolvedModel
from storytelling.stack.profiles import LanguageModel, Painter, Profile
from storytelling.stack.vllm import lora_args

# What a story engine is called in the story service when the profile's storyteller serves it.
STORY_ENGINE = {"embedded": "embedded", "vllm": "vllm", "openai": "remote"}
VLLM_STARTUP_S = {"cpu": 600.0, "cuda": 1800.0}  # a first GPU start also compiles and captures graphs


@dataclass(frozen=True)
class VllmLaunch:
    """One vLLM server: the role that owns it, the model directory, and `start_vllm` keyword arguments."""

    role: str
    served_name: str
    path: Path
    options: dict[str, object]


@dataclass(frozen=True)
class EnginePlan:
    vllm: list[VllmLaunch] = field(default_factory=list)
    # config.pbtxt parameters of the Triton painter models; None when the painter is not on Triton.
    triton: dict[str, str] | None = None


@dataclass(frozen=True)
class ServiceConfig:
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)


def plan_engines(profile: Profile, models: dict[str, ResolvedModel], gpu: Gpu | None) -> EnginePlan:
    launches = [
        _vllm_launch(role, model, models[role], profile, gpu)
        for role, model in profile.models().items()
        if isinstance(model, LanguageModel) and model.engine == "vllm"
    ]
    painter = profile.painter
    triton = _triton_parameters(painter, models["painter"]) if painter.engine == "triton" else None
    return EnginePlan(launches, triton)


def _vllm_launch(
    role: str, model: LanguageModel, resolved: ResolvedModel, profile: Profile, gpu: Gpu | None
) -> VllmLaunch:
    extra = list(model.engine_args)
    if model.quantization:
        extra += ["--quantization", model.quantization]
    if resolved.adapters:
        extra += lora_args(resolved.adapters, max_rank=model.max_lora_rank)
    options: dict[str, object] = {
        "max_model_len": model.max_model_len,
        "dtype": model.dtype if profile.device == "cuda" or model.dtype != "auto" else "float32",
        "extra_args": extra,
        "device": profile.device,
        "startup_timeout": VLLM_STARTUP_S[profile.device],
    }
    if profile.device == "cuda":
        assert gpu is not None
        # vLLM's utilisation is a fraction of the whole GPU: the share over what this GPU really has.
        options["gpu_memory_utilization"] = round(model.gpu_memory_gib / gpu.memory_gib, 4)
        options["eager"] = False
    else:
        options["kv_cache_gib"] = model.cpu_kv_cache_gib
    return VllmLaunch(role, model.name, resolved.path, options)


def _triton_parameters(painter: Painter, resolved: ResolvedModel) -> dict[str, str]:
    parameters = {
        "model": str(resolved.path),
        "scheduler": painter.scheduler,
        "steps": str(painter.steps),
        "guidance_scale": str(painter.guidance_scale),
        "width": str(painter.width),
        "height": str(painter.height),
        "dtype": painter.dtype,
        "variant": painter.variant,
        "max_side": str(max(1024, painter.width, painter.height)),
        "lora": json.dumps(_lora(painter, resolved)) if resolved.adapters else "",
    }
    if painter.execution_env:
        parameters["EXECUTION_ENV_PATH"] = painter.execution_env
    return parameters


def _lora(painter: Painter, resolved: ResolvedModel) -> dict[str, dict[str, object]]:
    return {
        name: {"path": str(path), "scale": painter.lora_adapters[name].scale}
        for name, path in resolved.adapters.items()
    }


def service_configs(
    profile: Profile,
    models: dict[str, ResolvedModel],
    vllm_urls: dict[str, str],
    triton_url: str = "",
    environ: dict[str, str] | None = None,
) -> dict[str, ServiceConfig]:
    """Flags and environment of the story, render and evaluation services for `profile`, once its engines
    run: `vllm_urls` maps the role owning each vLLM server to its `…/v1` URL."""
    environ = dict(os.environ) if environ is None else environ
    specs = _Specs(profile, models, vllm_urls, environ)
    return {
        "story": _story(profile, specs),
        "render": _render(profile, models, triton_url, environ),
        "evaluation": _evaluation(profile, specs),
    }


@dataclass
class _Specs:
    """`storytelling.llm.EngineSpec` JSON for the roles of a profile."""

    profile: Profile
    models: dict[str, ResolvedModel]
    vllm_urls: dict[str, str]
    environ: dict[str, str]

    def spec(self, role: str) -> dict[str, object] | None:
        found = self.profile.engine_of(role)
        if found is None:
            return None
        owner, model = found
        spec: dict[str, object]
        if model.engine == "embedded":
            spec = {"kind": "embedded", "model": str(self.models[owner].path)}
            if self.models[owner].adapter is not None:
                spec["adapter"] = str(self.models[owner].adapter)
        elif model.engine == "vllm":
            spec = {"kind": "openai", "base_url": self.vllm_urls[owner], "model": model.name}
            spec |= {"max_concurrency": model.max_concurrency, "timeout_s": model.timeout_s}
        else:
            assert model.endpoint is not None
            spec = {
                "kind": "openai",
                "base_url": _required(self.environ, model.endpoint.base_url_env, owner),
                "model": _model_name(self.environ, model, owner),
                "api_key_env": model.endpoint.api_key_env,
                "max_concurrency": model.max_concurrency,
                "timeout_s": model.timeout_s,
            }
        if owner in self.models and self.models[owner].random_weights:
            spec["random_weights"] = True
        return spec

    def adapters(self, role: str) -> dict[str, dict[str, object]]:
        """One story engine per LoRA adapter of a vLLM storyteller, named after the adapter."""
        base = self.spec(role)
        resolved = self.models.get(role)
        if base is None or resolved is None or self.profile.storyteller.engine != "vllm":
            return {}
        return {name: {**base, "model": name} for name in resolved.adapters}


def _story(profile: Profile, specs: _Specs) -> ServiceConfig:
    teller = profile.storyteller
    name = STORY_ENGINE[teller.engine]
    engines = {name: specs.spec("storyteller"), **specs.adapters("storyteller")}
    sampling = teller.sampling
    args = ["--engines", json.dumps(engines), "--default-engine", name]
    args += ["--temperature", str(sampling.temperature), "--top-p", str(sampling.top_p)]
    args += ["--max-tokens", str(sampling.max_tokens), "--max-attempts", str(sampling.max_attempts)]
    if teller.mode:
        args += ["--default-mode", teller.mode]
    if teller.accept_cut:
        args += ["--accept-cut", "true"]
    return ServiceConfig(args)


def _evaluation(profile: Profile, specs: _Specs) -> ServiceConfig:
    args = []
    for role, flag, output in (
        ("extractor", "--extractors", "--extractor-output"),
        ("judge", "--judges", "--judge-output"),
    ):
        spec = specs.spec(role)
        if spec is not None:
            args += [flag, json.dumps({role: spec})]
            if profile.structured_output(role):  # decoding constrained to the evaluator's JSON schema
                args += [output, "json_schema"]
    if profile.embedder:
        args += ["--embedder", profile.embedder]
    return ServiceConfig(args)


def _render(
    profile: Profile, models: dict[str, ResolvedModel], triton_url: str, environ: dict[str, str]
) -> ServiceConfig:
    painter = profile.painter
    if painter.engine == "sketch":
        return ServiceConfig(["--default-painter", "sketch"])
    if painter.engine == "triton":
        return ServiceConfig(["--triton-url", triton_url, "--default-painter", "triton"])
    if painter.engine == "embedded":
        if painter.width != painter.height or painter.lora_adapters:
            raise ModelError(
                "painter: the embedded painter paints square images without adapters; use engine triton"
            )
        args = ["--embedded-model", str(models["painter"].path), "--default-painter", "embedded"]
        args += ["--embedded-steps", str(painter.steps), "--embedded-size", str(painter.width)]
        args += ["--embedded-guidance-scale", str(painter.guidance_scale)]
        args += ["--embedded-dtype", painter.dtype]
        return ServiceConfig(args)
    assert painter.endpoint is not None
    args = ["--openai-base-url", _required(environ, painter.endpoint.base_url_env, "painter")]
    args += ["--openai-model", _model_name(environ, painter, "painter"), "--default-painter", "openai"]
    env = {}
    key = environ.get(painter.endpoint.api_key_env, "") if painter.endpoint.api_key_env else ""
    if key:  # through the environment: a flag would show the key in `ps`
        env["STORYTELLING_RENDER_OPENAI_API_KEY"] = key
    return ServiceConfig(args, env)


def check_environment(profile: Profile, environ: dict[str, str] | None = None) -> None:
    """Raises ModelError (one line) if a remote endpoint's URL, or its model name where the profile gives
    none, is missing from the environment: checked before anything starts."""
    environ = dict(os.environ) if environ is None else environ
    for role, model in profile.models().items():
        if model.endpoint is not None:
            _required(environ, model.endpoint.base_url_env, role)
            _model_name(environ, model, role)


def _required(environ: dict[str, str], variable: str, role: str) -> str:
    value = environ.get(variable, "")
    if not value:
        raise ModelError(f"{role}: environment variable {variable} is not set; export it before starting")
    return value


def _model_name(environ: dict[str, str], model: LanguageModel | Painter, role: str) -> str:
    assert model.endpoint is not None
    if model.endpoint.model_env and environ.get(model.endpoint.model_env):
        return environ[model.endpoint.model_env]
    if not model.model:
        return _required(environ, model.endpoint.model_env, role)
    return model.model
