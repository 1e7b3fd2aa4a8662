"""Downloads the models an engine will load, before it starts (the Helm chart's init containers).

    python -m storytelling.stack.fetch --cache-dir /models/huggingface [--variant fp16] MODEL [MODEL ...]

A MODEL is a Hugging Face Hub id (`org/name`, or `org/name@revision`), a local path (checked, not copied)
or `tiny-random` (built at load time; nothing to fetch). Downloads go into the Hugging Face cache layout
under --cache-dir, where the engines (vLLM, diffusers in Triton) find them with HF_HOME pointing at its
parent and HF_HUB_OFFLINE=1. HF_TOKEN authorizes gated models.

Only the files an engine loads are fetched (`select_files`): hub repositories often hold the same weights
several times (PyTorch pickles beside safetensors, fp16 variants, ONNX and OpenVINO exports, single-file
checkpoints beside a diffusers layout), which can triple a 20 GB download. Without network, a model already
in the cache is used as it is.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path, PurePosixPath

log = logging.getLogger("storytelling.fetch")

TINY_RANDOM = "tiny-random"
EXPORT_DIRS = frozenset({"onnx", "openvino", "flax", "coreml", "original"})
EXPORT_PREFIXES = ("openvino_", "flax_")
EXPORT_SUFFIXES = frozenset({".onnx", ".onnx_data", ".msgpack", ".h5", ".tflite", ".mlmodel", ".ot", ".gguf"})
PICKLE_SUFFIXES = frozenset({".bin", ".pt", ".pth", ".ckpt"})
VARIANTS = (".fp16", ".bf16", ".fp32")


class FetchError(Exception):
    """A model cannot be fetched; the message names it and says what to do."""


def select_files(files: Iterable[str], variant: str = "") -> list[str]:
    """The files of a repository an engine loads: safetensors rather than pickles of the same weights, no
    exports, no precision variants beside the default weights (but the `variant` the engine loads, fp16...,
    instead of the default weights it stands for), and, in a diffusers layout (model_index.json), no
    single-file checkpoints at the top."""
    paths = [PurePosixPath(f) for f in files]
    diffusers_layout = PurePosixPath("model_index.json") in paths
    by_dir: dict[PurePosixPath, set[str]] = {}
    for path in paths:
        by_dir.setdefault(path.parent, set()).add(path.name)

    def wanted(path: PurePosixPath) -> bool:
        siblings = by_dir[path.parent]
        suffix = path.suffix
        if EXPORT_DIRS.intersection(path.parts[:-1]) or suffix in EXPORT_SUFFIXES:
            return False
        if path.name.startswith(EXPORT_PREFIXES):
            return False
        if suffix in PICKLE_SUFFIXES and any(name.endswith(".safetensors") for name in siblings):
            return False
        stem = path.name.removesuffix(suffix)
        if variant and f"{stem}.{variant}{suffix}" in siblings:
            return False  # the default weights the chosen variant stands for
        for other in VARIANTS:
            chosen = bool(variant) and other == f".{variant}"
            if not chosen and stem.endswith(other) and f"{stem.removesuffix(other)}{suffix}" in siblings:
                return False
        return not (
            diffusers_layout
            and path.parent == PurePosixPath(".")
            and suffix in {".safetensors", *PICKLE_SUFFIXES}
        )

    return sorted(str(path) for path in paths if wanted(path))


def fetch(model: str, cache_dir: Path, variant: str = "") -> str:
    """Makes `model` available offline (with its `variant` weights where it has them); returns where it
    is. Raises FetchError naming the model."""
    if model == TINY_RANDOM:
        return model
    if model.startswith(("/", "./", "../")) or Path(model).exists():
        if not Path(model).exists():
            raise FetchError(f"model {model}: no such path; put the weights there or name a hub id")
        return model
    repo, _, revision = model.partition("@")
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        files = HfApi().list_repo_files(repo, revision=revision or None)
    except GatedRepoError:
        raise FetchError(
            f"model {model}: gated on the Hugging Face Hub; accept its terms there and give a token "
            "with access in HF_TOKEN (chart value modelStorage.hfTokenSecret)"
        ) from None
    except (RepositoryNotFoundError, RevisionNotFoundError):
        raise FetchError(f"model {model}: no such repository or revision on the Hugging Face Hub") from None
    except Exception as exc:  # noqa: BLE001 - no network (offline mode, DNS, proxy...): try the cache
        try:
            path = snapshot_download(
                repo, revision=revision or None, cache_dir=cache_dir, local_files_only=True
            )
        except (LocalEntryNotFoundError, OSError):
            raise FetchError(
                f"model {model}: cannot reach the Hugging Face Hub ({type(exc).__name__}) and it is not in "
                f"{cache_dir}; allow HTTPS egress to huggingface.co or pre-load the cache"
            ) from None
        log.info("%s: using the cached copy (%s)", model, exc)
        return path
    selected = select_files(files, variant)
    log.info("%s: fetching %d of %d files", model, len(selected), len(files))
    return snapshot_download(repo, revision=revision or None, cache_dir=cache_dir, allow_patterns=selected)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m storytelling.stack.fetch", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--cache-dir", type=Path, required=True, help="Hugging Face cache directory")
    parser.add_argument("--variant", default="", help="weight variant the engine loads (fp16...)")
    parser.add_argument("models", nargs="+", help="hub ids (org/name[@revision]), local paths or tiny-random")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    failed = False
    for model in args.models:
        try:
            print(f"{model}: {fetch(model, args.cache_dir, args.variant)}", flush=True)
        except FetchError as exc:
            print(f"fetch: {exc}", file=sys.stderr, flush=True)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
