"""Entry point of the `storytelling` command: argument parsing and the mapping of errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from storytelling.cli import evaluate, jobs, stack
from storytelling.client import (
    DEFAULT_TARGET,
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    StorytellingError,
    UnavailableError,
)

# Exit codes, documented in clients/python/README.md. argparse itself exits with 2 on bad usage, and an
# interrupt (Ctrl-C, or SIGTERM during `paint --embedded`) exits with 130.
EXIT_CODES: dict[type[StorytellingError], int] = {
    InvalidArgumentError: 2,
    NotFoundError: 3,
    FailedPreconditionError: 4,
    UnavailableError: 5,
    DeadlineExceededError: 6,
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--address",
        default=os.environ.get("STORYTELLING_ADDRESS", DEFAULT_TARGET),
        help=f"orchestrator address (env STORYTELLING_ADDRESS, default {DEFAULT_TARGET})",
    )
    common.add_argument("--timeout", type=float, default=30.0, help="deadline of each request in seconds")
    parser = argparse.ArgumentParser(
        prog="storytelling",
        description="Write, paint and evaluate storytelling images with StorytellingPainter.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    jobs.add_parsers(commands, common)
    evaluate.add_parser(commands, common)
    stack.add_parser(commands, common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InvalidArgumentError as error:
        field = f" (field {error.field})" if error.field else ""
        return _fail(f"invalid request{field}: {error.reason}", EXIT_CODES[InvalidArgumentError])
    except UnavailableError as error:
        return _fail(f"{error}\nstart the services with `storytelling stack up`, or pass --address", 5)
    except StorytellingError as error:
        return _fail(str(error), next((c for t, c in EXIT_CODES.items() if isinstance(error, t)), 1))
    except (ValueError, OSError, stack.StackError) as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(message: str, code: int) -> int:
    print(f"storytelling: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
