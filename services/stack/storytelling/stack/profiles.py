"""Model profiles: which models a deployment runs, on which engines, within which GPU memory plan.

A profile is one YAML file in `deploy/profiles/` (plain data: the local stack and the Helm chart read the
same files). It names the four model roles (storyteller, key-point extractor, VLM judge, painter), each
with its engine settings, and for GPU profiles a memory plan: every engine on the GPU gets a share, and
the shares plus a reserve must fit the GPU. `load_profile` validates a file against `Profile` and the
plan; `deploy/profiles/profile.schema.json` is the same schema as JSON Schema, for editors and charts
(`make docs` regenerates it; a test fails when it is stale).

Models are named by source: `builtin:NAME` (built or converted offline, see `storytelling.stack.models`),
a hub id (`org/name`, downloaded on first use), or a local path. Remote endpoints take their URL, key and
model from environment variables named in the profile, never from the file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    model_validator,
)

REPO_ROOT = Path(__file__).resolve().parents[4]
PROFILES_DIR = REPO_ROOT / "deploy" / "profiles"
SCHEMA_FILE = PROFILES_DIR / "profile.schema.json"
DEFAULT_PROFILE = "offline"
ENV_NAME = r"^[A-Z_][A-Z0-9_]*$"
OPTIONAL_ENV_NAME = r"^([A-Z_][A-Z0-9_]*)?$"
# vLLM needs room beside its weights for activations, CUDA graphs and at least some KV cache; a painter
# for activations and the VAE decode. A share must exceed the weights by this much.
MIN_HEADROOM_GIB = 1.0

Dtype = Literal["auto", "float32", "float16", "bfloat16"]
Quantization = Literal["awq", "gptq", "fp8", "bitsandbytes", "compressed-tensors"]


class ProfileError(ValueError):
    """A profile that cannot be used; the message names the file and every bad field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Endpoint(_Strict):
    """A remote OpenAI-compatible endpoint, configured from the environment (secrets never in files)."""

    base_url_env: str = Field(pattern=ENV_NAME, description="Variable holding the base URL (…/v1).")
    api_key_env: str = Field("", pattern=OPTIONAL_ENV_NAME, description="Variable holding the API key.")
    model_env: str = Field(
        "", pattern=OPTIONAL_ENV_NAME, description="Variable naming the model; overrides `model` when set."
    )

    def variables(self) -> list[str]:
        return [v for v in (self.base_url_env, self.api_key_env, self.model_env) if v]


class Adapter(_Strict):
    """A LoRA adapter loaded beside its base model and selected by its name."""

    source: str = Field(min_length=1, description="Hub id or local path of the adapter.")
    revision: str = Field("", description="Hub revision (branch, tag or commit); empty: main.")
    scale: float = Field(1.0, gt=0, le=4, description="Strength of a painter adapter.")


class Sampling(_Strict):
    """Story service defaults a request may override; adapted per profile to the storyteller's size."""

    temperature: float = Field(0.8, ge=0, le=2)
    top_p: float = Field(0.95, gt=0, le=1)
    max_tokens: int = Field(320, ge=16, le=4096, description="Story length cap in tokens.")
    max_attempts: int = Field(3, ge=0, le=10, description="Regenerations after a rejected story.")


class LanguageModel(_Strict):
    """An LLM or VLM and the engine that serves it."""

    engine: Literal["embedded", "vllm", "openai"] = Field(
        description="embedded: in the service's process (CPU); vllm: a vLLM server the stack starts; "
        "openai: a remote OpenAI-compatible endpoint (see `endpoint`)."
    )
    model: str = Field(
        "", description="builtin:NAME, hub id or local path; for openai the model name at the endpoint."
    )
    revision: str = Field("", description="Hub revision (branch, tag or commit); empty: main.")
    served_name: str = Field("", description="Model name in the OpenAI API; empty: derived from `model`.")
    dtype: Dtype = "auto"
    quantization: Quantization | None = Field(None, description="Weight quantization; None: as stored.")
    max_model_len: int = Field(4096, ge=256, description="Context length (prompt + output) in tokens.")
    gpu_memory_gib: float = Field(0.0, ge=0, description="Share of the GPU memory plan (vllm on cuda).")
    weights_gib: float = Field(
        0.0, ge=0, description="Size of the weights in GiB, checked against the share before download."
    )
    cpu_kv_cache_gib: int = Field(1, ge=1, le=64, description="KV cache of a vLLM CPU engine.")
    lora_adapters: dict[str, Adapter] = Field(
        default_factory=dict, description="LoRA adapters served beside the base model, by name (vllm)."
    )
    adapter: str = Field(
        "",
        description="A LoRA adapter merged into the model when it loads (embedded): builtin:NAME, hub id "
        "or local path; the Mini-Storyteller is builtin:mini-storyteller.",
    )
    max_lora_rank: int = Field(16, ge=1, le=512, description="Largest adapter rank (vllm).")
    structured_output: bool = Field(
        False,
        description="Constrain outputs to the expected JSON schema (vLLM structured outputs): for small "
        "models that cannot keep a format; costs throughput on large ones.",
    )
    engine_args: list[str] = Field(default_factory=list, description="Extra vLLM command-line flags.")
    endpoint: Endpoint | None = Field(None, description="Where an openai engine is (engine: openai only).")
    max_concurrency: int = Field(8, ge=1, le=1024, description="Requests in flight to the engine.")
    timeout_s: float = Field(120.0, gt=0, description="Cap on one engine call.")

    @model_validator(mode="after")
    def _engine_fields(self) -> LanguageModel:
        if self.engine == "openai":
            if self.endpoint is None:
                raise ValueError("engine openai needs an endpoint (base_url_env, api_key_env, model_env)")
            if not self.model and not self.endpoint.model_env:
                raise ValueError("engine openai needs model or endpoint.model_env")
        else:
            if self.endpoint is not None:
                raise ValueError(f"endpoint is only for engine openai, not {self.engine}")
            if not self.model:
                raise ValueError(f"engine {self.engine} needs model (builtin:NAME, hub id or path)")
        if self.lora_adapters and self.engine != "vllm":
            raise ValueError("lora_adapters need engine vllm")
        if self.adapter and self.engine != "embedded":
            raise ValueError("adapter needs engine embedded; a vllm engine serves adapters as lora_adapters")
        return self

    @property
    def name(self) -> str:
        """The model's name in the OpenAI API of the engine that serves it."""
        return self.served_name or self.model.removeprefix("builtin:").rstrip("/").rsplit("/", 1)[-1]


class Storyteller(LanguageModel):
    mode: str = Field(
        "",
        pattern=r"^[a-z0-9-]*$",
        description="Default prompting mode (naive, cor-guided...); empty: the story service's default.",
    )
    sampling: Sampling = Field(default_factory=Sampling)
    accept_cut: bool = Field(
        False,
        description="Return a story cut at its last complete sentence as soon as one attempt gives a clean "
        "cut (labelled salvaged) instead of regenerating: for small models that never stop by themselves.",
    )


class SharedEngine(_Strict):
    """This role uses the engine of another role (one model, one share of the GPU)."""

    use: Literal["storyteller", "judge"]
    structured_output: bool = Field(
        False, description="Constrain this role's outputs to their JSON schema (see LanguageModel)."
    )


class Painter(_Strict):
    engine: Literal["sketch", "triton", "embedded", "openai"] = Field(
        description="sketch: the offline storyboard (a labelled fallback); triton: a diffusers pipeline "
        "in a Triton server the stack starts; embedded: the same pipeline in the render service's process; "
        "openai: a remote OpenAI-compatible image API."
    )
    model: str = Field("", description="builtin:NAME, hub id or local diffusers directory.")
    revision: str = Field("", description="Hub revision; empty: main.")
    variant: str = Field("", description="Weight variant to load (fp16...); empty: the default files.")
    dtype: Dtype = "auto"
    scheduler: str = Field("", description="diffusers scheduler class; empty keeps the checkpoint's.")
    steps: int = Field(25, ge=1, le=1000)
    guidance_scale: float = Field(7.5, ge=0, le=50)
    width: int = Field(512, ge=64, le=4096, multiple_of=8)
    height: int = Field(512, ge=64, le=4096, multiple_of=8)
    gpu_memory_gib: float = Field(0.0, ge=0, description="Share of the GPU memory plan.")
    weights_gib: float = Field(0.0, ge=0, description="Size of the pipeline's weights in GiB.")
    lora_adapters: dict[str, Adapter] = Field(
        default_factory=dict, description="LoRA adapters fused into the pipeline at load, by name."
    )
    execution_env: str = Field(
        "",
        description="Triton Python-backend EXECUTION_ENV_PATH (a conda-pack archive with numpy<2), for "
        "Triton images whose own Python has numpy 2 (deploy/triton/README.md).",
    )
    endpoint: Endpoint | None = Field(None, description="The image API (engine: openai only).")

    @model_validator(mode="after")
    def _engine_fields(self) -> Painter:
        if (self.engine == "openai") != (self.endpoint is not None):
            raise ValueError("endpoint is required for engine openai and only allowed there")
        if self.engine in ("triton", "embedded") and not self.model:
            raise ValueError(f"engine {self.engine} needs model (builtin:NAME, hub id or path)")
        if self.engine == "openai" and not self.model and not self.endpoint.model_env:
            raise ValueError("engine openai needs model or endpoint.model_env")
        if self.engine in ("sketch", "openai") and (self.lora_adapters or self.execution_env):
            raise ValueError(f"lora_adapters and execution_env do not apply to engine {self.engine}")
        return self


class GpuPlan(_Strict):
    memory_gib: float = Field(gt=0, description="Usable memory of the smallest GPU this profile targets.")
    reserve_gib: float = Field(
        1.0, ge=0, description="Kept free: CUDA contexts of every process, fragmentation."
    )


def _role_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "shared" if "use" in value else "model"
    return "shared" if isinstance(value, SharedEngine) else "model"


Role = Annotated[
    Annotated[LanguageModel, Tag("model")] | Annotated[SharedEngine, Tag("shared")],
    Discriminator(_role_kind),
]


class Profile(_Strict):
    """One deployment's models. Roles without a model leave their evaluators NOT_RUN, saying why."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Equals the file name without .yaml.")
    description: str = Field(min_length=1)
    device: Literal["cpu", "cuda"] = Field(description="Where the engines run.")
    gpu: GpuPlan | None = Field(None, description="GPU memory plan; required for cuda, absent for cpu.")
    storyteller: Storyteller
    extractor: Role | None = Field(None, description="Key-point LLM; none: alignment is not run.")
    judge: Role | None = Field(None, description="VLM for alignment and complexity; none: both are not run.")
    painter: Painter
    embedder: str = Field(
        "", description="Sentence-transformers model for diversity; empty: bundled all-MiniLM-L6-v2."
    )

    @model_validator(mode="after")
    def _roles_and_plan(self) -> Profile:
        for role in ("extractor", "judge"):
            shared = getattr(self, role)
            if isinstance(shared, SharedEngine):
                if shared.use == role:
                    raise ValueError(f"{role}.use: a role cannot use itself")
                if isinstance(getattr(self, shared.use), SharedEngine | None):
                    raise ValueError(f"{role}.use: {shared.use} has no model of its own to share")
        if self.device == "cpu":
            if self.gpu is not None:
                raise ValueError("gpu: a cpu profile has no GPU memory plan")
            for role, model in self.models().items():
                if model.gpu_memory_gib:
                    raise ValueError(f"{role}.gpu_memory_gib: a cpu profile plans no GPU memory")
            return self
        if self.gpu is None:
            raise ValueError("gpu: a cuda profile needs a memory plan (memory_gib, reserve_gib)")
        for problem in plan_problems(self):
            raise ValueError(problem)
        return self

    def models(self) -> dict[str, LanguageModel | Painter]:
        """Roles with a model of their own, by role name (shared roles are left out)."""
        roles = {"storyteller": self.storyteller, "extractor": self.extractor, "judge": self.judge}
        found: dict[str, LanguageModel | Painter] = {
            role: model for role, model in roles.items() if isinstance(model, LanguageModel)
        }
        found["painter"] = self.painter
        return found

    def engine_of(self, role: str) -> tuple[str, LanguageModel] | None:
        """(role that owns the engine, its model) serving `role`, following `use:`; None without one."""
        model = getattr(self, role)
        if isinstance(model, SharedEngine):
            return model.use, getattr(self, model.use)
        return None if model is None else (role, model)

    def structured_output(self, role: str) -> bool:
        model = getattr(self, role)
        return model is not None and model.structured_output

    def gpu_shares(self) -> dict[str, float]:
        """GPU memory share of each role whose engine runs on this machine's GPU."""
        if self.device != "cuda":
            return {}
        return {role: model.gpu_memory_gib for role, model in self.models().items() if _on_gpu(model)}

    def environment_variables(self) -> list[str]:
        """Environment variables the profile reads (remote endpoints), in role order."""
        return [v for m in self.models().values() if m.endpoint for v in m.endpoint.variables()]


def _on_gpu(model: LanguageModel | Painter) -> bool:
    return model.engine in ("vllm", "triton") or (isinstance(model, Painter) and model.engine == "embedded")


def plan_problems(profile: Profile) -> list[str]:
    """Why a cuda profile's memory plan does not add up (empty when it does)."""
    assert profile.gpu is not None
    problems = []
    shares = profile.gpu_shares()
    for role, model in profile.models().items():
        if not _on_gpu(model):
            if model.gpu_memory_gib:
                problems.append(f"{role}.gpu_memory_gib: engine {model.engine} does not run on the GPU")
            continue
        if model.gpu_memory_gib <= 0:
            problems.append(f"{role}.gpu_memory_gib: {model.model} runs on the GPU and needs a share")
        elif model.weights_gib <= 0:
            problems.append(f"{role}.weights_gib: give the size of {model.model}'s weights to check the plan")
        elif model.weights_gib + MIN_HEADROOM_GIB > model.gpu_memory_gib:
            problems.append(
                f"{role}.gpu_memory_gib: {model.model} has {model.weights_gib:g} GiB of weights, so its "
                f"share needs at least {model.weights_gib + MIN_HEADROOM_GIB:g} GiB, not "
                f"{model.gpu_memory_gib:g}"
            )
    planned = sum(shares.values()) + profile.gpu.reserve_gib
    if planned > profile.gpu.memory_gib + 1e-9:
        parts = " + ".join(f"{role} {share:g}" for role, share in shares.items())
        problems.append(
            f"gpu.memory_gib: the plan needs {planned:g} GiB ({parts} + reserve {profile.gpu.reserve_gib:g}) "
            f"but the GPU has {profile.gpu.memory_gib:g}"
        )
    return problems


def profile_path(name_or_path: str | Path) -> Path:
    """A profile name (`gpu-24gb`) resolves in the profiles folder; anything with a suffix is a path."""
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml", ".json"):
        return candidate
    return profiles_dir() / f"{name_or_path}.yaml"


def profiles_dir() -> Path:
    """`$STORYTELLING_PROFILES_DIR`, default `deploy/profiles` of this checkout."""
    return Path(os.environ.get("STORYTELLING_PROFILES_DIR") or PROFILES_DIR)


def profile_names() -> list[str]:
    return sorted(p.stem for p in profiles_dir().glob("*.yaml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """Reads and validates a profile; raises ProfileError naming the file and every bad field."""
    path = profile_path(name_or_path)
    if not path.is_file():
        raise ProfileError(
            f"no profile {str(name_or_path)!r} ({path} does not exist); known: {', '.join(profile_names())}"
        )
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ProfileError(f"{path}: not valid YAML: {error}") from None
    return parse_profile(data, source=path)


def parse_profile(data: object, *, source: Path | str = "<profile>") -> Profile:
    try:
        profile = Profile.model_validate(data)
    except ValidationError as error:
        raise ProfileError(f"{source}: " + "; ".join(_describe(e) for e in error.errors())) from None
    stem = Path(source).stem
    if isinstance(source, Path) and profile.name != stem:
        raise ProfileError(f"{source}: name: {profile.name!r} must equal the file name {stem!r}")
    return profile


def _describe(error: Any) -> str:
    """`field.path: message`, without pydantic's union-branch tags."""
    location = ".".join(str(part) for part in error["loc"] if part not in ("model", "shared"))
    message = error["msg"].removeprefix("Value error, ")
    return f"{location}: {message}" if location else message


def json_schema() -> dict[str, Any]:
    schema = Profile.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://storytelling-painter.dev/schemas/profile.schema.json"
    return schema
