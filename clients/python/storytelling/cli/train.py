"""`storytelling train ...`: delegates to `storytelling.training.cli`, the Mini-Storyteller pipeline.

The pipeline (TRL, peft, datasets) ships with the services distribution, not with this SDK, so the
subcommands are added only where it is installed; elsewhere `train` says what to install.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util

MODULE = "storytelling.training.cli"


class TrainingUnavailable(Exception):
    """The training package is not installed here."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    if _installed():
        importlib.import_module(MODULE).add_parser(commands)
        return
    train = commands.add_parser("train", help="train Mini-Storytellers (needs the services distribution)")
    train.add_argument("rest", nargs=argparse.REMAINDER)
    train.set_defaults(func=_unavailable)


def _installed() -> bool:
    try:
        return importlib.util.find_spec(MODULE) is not None
    except ModuleNotFoundError:
        return False


def _unavailable(args: argparse.Namespace) -> int:
    raise TrainingUnavailable(
        f"`storytelling train` needs the StorytellingPainter training package ({MODULE} is not importable); "
        "install the services (`make venv` in the repository)"
    )
