"""Channel construction shared by the sync and asyncio clients."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from storytelling.api.vocabulary import default_address

DEFAULT_TARGET = default_address("orchestrator")


@dataclass(frozen=True)
class ChannelOptions:
    """Transport settings. Images travel inside messages, so the default size limit is raised to 64 MiB."""

    max_message_mb: int = 64
    # HTTP/2 keepalive pings on idle watches, for proxies that drop quiet connections. Off by default:
    # servers refuse pings more often than every 5 minutes unless configured to accept them.
    keepalive_s: int | None = None
    # TLS or other credentials; None means a plaintext channel (loopback and in-cluster use).
    credentials: grpc.ChannelCredentials | None = None

    def grpc_options(self) -> list[tuple[str, int]]:
        size = self.max_message_mb * 1024 * 1024
        options = [("grpc.max_send_message_length", size), ("grpc.max_receive_message_length", size)]
        if self.keepalive_s is not None:
            options.append(("grpc.keepalive_time_ms", self.keepalive_s * 1000))
        return options


def open_channel(target: str, options: ChannelOptions) -> grpc.Channel:
    if options.credentials is not None:
        return grpc.secure_channel(target, options.credentials, options=options.grpc_options())
    return grpc.insecure_channel(target, options=options.grpc_options())


def open_aio_channel(target: str, options: ChannelOptions) -> grpc.aio.Channel:
    if options.credentials is not None:
        return grpc.aio.secure_channel(target, options.credentials, options=options.grpc_options())
    return grpc.aio.insecure_channel(target, options=options.grpc_options())
