"""Channel construction shared by the sync and asyncio clients: size limits, TLS and the bearer token."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from storytelling.api.vocabulary import default_address
from storytelling.api.credentials import TOKEN_ENV, TOKEN_FILE_ENV, bearer_metadata, channel_credentials

DEFAULT_TARGET = default_address("orchestrator")


def token_from_env() -> str | None:
    """$STORYTELLING_TOKEN, else the content of the file $STORYTELLING_TOKEN_FILE names, else None."""
    if token := os.environ.get(TOKEN_ENV, "").strip():
        return token
    if path := os.environ.get(TOKEN_FILE_ENV, "").strip():
        return read_token_file(Path(path))
    return None


def read_token_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"token file {path}: cannot read: {error}") from None


@dataclass(frozen=True)
class ChannelOptions:
    """Transport settings. Images travel inside messages, so the default size limit is raised to 64 MiB.

    `token` defaults to $STORYTELLING_TOKEN (or the file $STORYTELLING_TOKEN_FILE names); it is sent as
    `authorization: Bearer <token>` on every call and never shown by repr().
    """

    max_message_mb: int = 64
    # HTTP/2 keepalive pings on idle watches, for proxies that drop quiet connections. Off by default:
    # servers refuse pings more often than every 5 minutes unless configured to accept them.
    keepalive_s: int | None = None
    # TLS or other credentials; None means a plaintext channel (loopback and in-cluster use).
    credentials: grpc.ChannelCredentials | None = None
    token: str | None = field(default_factory=token_from_env, repr=False)
    # The name to verify in the server's certificate when it differs from the target's host (an IP, a
    # port-forward to localhost).
    server_name: str | None = None

    @classmethod
    def tls(
        cls,
        ca: Path | str | None = None,
        cert: Path | str | None = None,
        key: Path | str | None = None,
        **options: object,
    ) -> ChannelOptions:
        """TLS trusting `ca` (None: the system's roots); `cert` and `key` for mutual TLS."""
        paths = [Path(p) if p is not None else None for p in (ca, cert, key)]
        return cls(credentials=channel_credentials(*paths), **options)

    def grpc_options(self) -> list[tuple[str, int | str]]:
        size = self.max_message_mb * 1024 * 1024
        options: list[tuple[str, int | str]] = [
            ("grpc.max_send_message_length", size),
            ("grpc.max_receive_message_length", size),
        ]
        if self.keepalive_s is not None:
            options.append(("grpc.keepalive_time_ms", self.keepalive_s * 1000))
        if self.server_name:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        return options

    def call_metadata(self) -> tuple[tuple[str, str], ...]:
        """The metadata every call carries: the bearer token, if any (ValueError if it is malformed)."""
        return (bearer_metadata(self.token),) if self.token else ()


def open_channel(target: str, options: ChannelOptions) -> grpc.Channel:
    if options.credentials is not None:
        return grpc.secure_channel(target, options.credentials, options=options.grpc_options())
    return grpc.insecure_channel(target, options=options.grpc_options())


def open_aio_channel(target: str, options: ChannelOptions) -> grpc.aio.Channel:
    if options.credentials is not None:
        return grpc.aio.secure_channel(target, options.credentials, options=options.grpc_options())
    return grpc.aio.insecure_channel(target, options=options.grpc_options())
