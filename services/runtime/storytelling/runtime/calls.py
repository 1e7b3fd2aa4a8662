"""How a service calls other services of ours when they are secured: TLS files and a bearer token file.

The files are checked for changes at most every `check_interval_s`; a rotated client certificate or CA
opens a new channel (`generation` changes), and a rotated token is sent from the next call on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import grpc

from storytelling.api.credentials import bearer_metadata, channel_credentials
from storytelling.runtime.watch import FileWatch

log = logging.getLogger("storytelling.calls")


class CredentialsError(ValueError):
    """A credentials file cannot be used; the message names it, never its content."""


@dataclass(frozen=True)
class CallerFiles:
    """Where the caller's credentials live. `tls` without a CA file trusts the system's roots."""

    tls: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    server_name: str | None = None  # the name to verify in the server's certificate, if not the address's
    token_file: Path | None = None

    @property
    def secure(self) -> bool:
        return self.tls or self.ca_file is not None or self.cert_file is not None


class CallerCredentials:
    """The channel credentials and call metadata to reach secured services, current with the files."""

    def __init__(
        self, files: CallerFiles, check_interval_s: float = 5.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.files = files
        self._interval, self._clock = check_interval_s, clock
        self._lock = threading.Lock()
        tls_paths = [p for p in (files.ca_file, files.cert_file, files.key_file) if p is not None]
        self._tls_watch, self._token_watch = (
            FileWatch(tls_paths),
            FileWatch([files.token_file] if files.token_file else []),
        )
        self._tls_watch.changed()
        self._token_watch.changed()
        self.generation = 0
        self._credentials = self._read_credentials() if files.secure else None
        self._metadata = self._read_token() if files.token_file else ()
        self._checked_at = clock()

    def _read_credentials(self) -> grpc.ChannelCredentials:
        try:
            return channel_credentials(self.files.ca_file, self.files.cert_file, self.files.key_file)
        except ValueError as exc:
            raise CredentialsError(str(exc)) from None

    def _read_token(self) -> tuple[tuple[str, str], ...]:
        path = self.files.token_file
        try:
            token = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise CredentialsError(f"token file {path}: cannot read: {exc}") from None
        try:
            return (bearer_metadata(token),)
        except ValueError as exc:
            raise CredentialsError(f"token file {path}: {exc}") from None

    def refresh(self) -> None:
        """Re-reads files that changed; a file that became unreadable keeps the previous value."""
        with self._lock:
            if self._clock() - self._checked_at < self._interval:
                return
            self._checked_at = self._clock()
            try:
                if self.files.secure and self._tls_watch.changed():
                    self._credentials = self._read_credentials()
                    self.generation += 1
                    log.info("client TLS files reloaded")
                if self.files.token_file and self._token_watch.changed():
                    self._metadata = self._read_token()
                    log.info("client token reloaded", extra={"token_file": str(self.files.token_file)})
            except CredentialsError as exc:
                log.error("client credentials change refused; keeping the previous ones: %s", exc)

    def open_channel(self, address: str, options: list[tuple[str, object]]) -> grpc.aio.Channel:
        if self._credentials is None:
            return grpc.aio.insecure_channel(address, options=options)
        if self.files.server_name:
            options = [*options, ("grpc.ssl_target_name_override", self.files.server_name)]
        return grpc.aio.secure_channel(address, self._credentials, options=options)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata
