"""How the CLI reaches the services: address, deadline, TLS and bearer token flags, shared by commands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from storytelling.client import DEFAULT_TARGET, ChannelOptions
from storytelling.client.channel import read_token_file, token_from_env
from storytelling.api.credentials import TOKEN_ENV, TOKEN_FILE_ENV, channel_credentials


def add_flags(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument(
        "--address",
        default=env("STORYTELLING_ADDRESS", DEFAULT_TARGET),
        help=f"orchestrator address (env STORYTELLING_ADDRESS, default {DEFAULT_TARGET})",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="deadline of each request in seconds")
    tls = parser.add_argument_group("TLS and authentication")
    tls.add_argument(
        "--tls",
        action="store_true",
        default=env("STORYTELLING_TLS", "") not in ("", "0", "false"),
        help="connect over TLS, trusting the system's CAs (env STORYTELLING_TLS=1; implied by --tls-ca)",
    )
    tls.add_argument(
        "--tls-ca",
        type=Path,
        default=env("STORYTELLING_TLS_CA"),
        help="CA file that signed the server's certificate (env STORYTELLING_TLS_CA)",
    )
    tls.add_argument(
        "--tls-cert",
        type=Path,
        default=env("STORYTELLING_TLS_CERT"),
        help="client certificate for mutual TLS (env STORYTELLING_TLS_CERT)",
    )
    tls.add_argument(
        "--tls-key",
        type=Path,
        default=env("STORYTELLING_TLS_KEY"),
        help="key of --tls-cert (env STORYTELLING_TLS_KEY)",
    )
    tls.add_argument(
        "--tls-server-name",
        default=env("STORYTELLING_TLS_SERVER_NAME"),
        help="name to verify in the server's certificate when it is not the address's host",
    )
    tls.add_argument(
        "--token",
        default=None,
        help=f"bearer token (env {TOKEN_ENV}; prefer the env or --token-file: a flag is visible in ps)",
    )
    tls.add_argument(
        "--token-file", type=Path, default=None, help=f"file holding the token (env {TOKEN_FILE_ENV})"
    )


def channel_options(args: argparse.Namespace) -> ChannelOptions:
    """ChannelOptions from the flags; raises ValueError naming an unreadable file, never the token."""
    if args.token is not None:
        token = args.token.strip() or None
    elif args.token_file is not None:
        token = read_token_file(args.token_file)
    else:
        token = token_from_env()
    secure = args.tls or args.tls_ca is not None or args.tls_cert is not None
    credentials = channel_credentials(args.tls_ca, args.tls_cert, args.tls_key) if secure else None
    options = ChannelOptions(credentials=credentials, token=token, server_name=args.tls_server_name)
    options.call_metadata()  # a malformed token is reported now, before any call
    return options
