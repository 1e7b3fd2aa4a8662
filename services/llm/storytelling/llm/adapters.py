"""LoRA adapters shipped inside the project, named `builtin:NAME` wherever an engine takes an adapter.

`mini-storyteller` is the offline Mini-Storyteller: SmolLM2-135M-Instruct fine-tuned by the offline recipe
(`make train`, then `storytelling train ship`; its model card, `weights/mini-storyteller/README.md`, says
which stages ran, on which data, and how it compares with the base). It is small enough (about 5 MB in
bfloat16) to ship, so the offline default needs no training at install time.
"""

from __future__ import annotations

from pathlib import Path

PREFIX = "builtin:"
WEIGHTS = Path(__file__).parent / "weights"
BUILTIN = ("mini-storyteller",)


def resolve(adapter: str) -> str:
    """A directory or hub id for `adapter`; `builtin:NAME` becomes the shipped directory."""
    if not adapter.startswith(PREFIX):
        return adapter
    name = adapter.removeprefix(PREFIX)
    if name not in BUILTIN:
        raise ValueError(f"unknown builtin adapter {name!r}; shipped: {', '.join(BUILTIN)}")
    return str(WEIGHTS / name)


def mini_storyteller() -> Path:
    """The shipped Mini-Storyteller's directory (the stack's `builtin:mini-storyteller`)."""
    return Path(resolve(f"{PREFIX}mini-storyteller"))
