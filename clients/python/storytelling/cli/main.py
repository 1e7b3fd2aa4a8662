"""Entry point of the `storytelling` command: argument parsing and the mapping of errors to exit codes."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from storytelling.cli import cluster, connection, evaluate, jobs, stack, tokens, train
from storytelling.cluster.fetch import ClusterError
from storytelling.client import (
    DeadlineExceededError,
    FailedPreconditionError,
    InvalidArgumentError,
    NotFoundError,
    PermissionDeniedError,
    ResourceExhaustedError,
    StorytellingError,
    UnauthenticatedError,
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
    UnauthenticatedError: 7,  # before its base class: the first match wins
    PermissionDeniedError: 8,
    ResourceExhaustedError: 9,
}


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    connection.add_flags(common)
    parser = argparse.ArgumentParser(
        prog="storytelling",
        description="Write, paint and evaluate storytelling images with StorytellingPainter.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    jobs.add_parsers(commands, common)
    evaluate.add_parser(commands, common)
    stack.add_parser(commands, common)
    tokens.add_parser(commands)
    cluster.add_parser(commands)
    train.add_parser(commands)
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
    except UnauthenticatedError as error:
        return _fail(f"authentication failed: {error}", EXIT_CODES[UnauthenticatedError])
    except ResourceExhaustedError as error:
        retry = f"\nretry in {error.retry_after_s:.0f} s" if error.retry_after_s is not None else ""
        return _fail(f"{error}{retry}", EXIT_CODES[ResourceExhaustedError])
    except StorytellingError as error:
        return _fail(str(error), next((c for t, c in EXIT_CODES.items() if isinstance(error, t)), 1))
    except (ValueError, OSError, stack.StackError, ClusterError, train.TrainingUnavailable) as error:
        return _fail(str(error), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", 130)


def _fail(message: str, code: int) -> int:
    print(f"storytelling: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
