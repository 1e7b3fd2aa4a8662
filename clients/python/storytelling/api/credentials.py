"""Bearer tokens as clients send them and services check them: the vocabulary both sides share.

A call carries its token in the `authorization` metadata as `Bearer <token>`. Services keep only the
token's SHA-256 digest (`token_digest`), so the token file they read can be published to operators
without revealing a token. Tokens made by `new_token` start with `stp_`, which secret scanners and the
services' log redaction recognise.

Scopes: `read` (Get, List, Watch), `write` (everything that creates work or changes state), `admin`
(every identity's jobs, not only the token's own). They are independent: a token has the ones listed.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from pathlib import Path

import grpc

METADATA_KEY = "authorization"
SCHEME = "Bearer"
TOKEN_ENV = "STORYTELLING_TOKEN"
TOKEN_FILE_ENV = "STORYTELLING_TOKEN_FILE"
TOKEN_PREFIX = "stp_"
SCOPES = ("read", "write", "admin")
DIGEST_PREFIX = "sha256:"

# gRPC metadata values are printable ASCII; a token is one word of them.
_TOKEN = re.compile(r"[\x21-\x7e]{16,4096}")
REDACTED = "[redacted]"
# What log redaction removes: our tokens anywhere, and a credential-like word after "Bearer " (the RFC
# 6750 token alphabet, 8 characters or more, so prose such as "bearer token:" stays readable).
SECRET_PATTERN = re.compile(rf"{TOKEN_PREFIX}[A-Za-z0-9_-]{{8,}}|(?i:(?<=bearer ))[A-Za-z0-9._~+/=-]{{8,}}")


def new_token() -> str:
    """A fresh random token: 256 bits, URL-safe, recognisable by its prefix."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What a token file stores instead of the token: the hex SHA-256 of its UTF-8 bytes (a `sha256:`
    prefix is accepted too)."""
    return hashlib.sha256(token.encode()).hexdigest()


def check_token(token: str) -> str:
    """The token, stripped; raises ValueError saying what is wrong with it, without echoing it."""
    token = token.strip()
    if not _TOKEN.fullmatch(token):
        raise ValueError(
            f"token: must be 16 to 4096 printable ASCII characters without spaces (got {len(token)} "
            "characters); check the --token value, STORYTELLING_TOKEN or the token file"
        )
    return token


def bearer_metadata(token: str) -> tuple[str, str]:
    """The metadata pair that carries `token` on a call."""
    return METADATA_KEY, f"{SCHEME} {check_token(token)}"


def redact(text: str) -> str:
    """`text` with every token-looking word replaced by [redacted]."""
    return SECRET_PATTERN.sub(REDACTED, text)


def channel_credentials(
    ca: Path | None = None, cert: Path | None = None, key: Path | None = None
) -> grpc.ChannelCredentials:
    """TLS credentials from PEM files: `ca` verifies the server (None: the system's roots); `cert` and
    `key` are this client's certificate for mutual TLS. Raises ValueError naming an unreadable file."""
    if (cert is None) != (key is None):
        raise ValueError("tls: a client certificate needs its key: give both --tls-cert and --tls-key")

    def read(path: Path | None, what: str) -> bytes | None:
        if path is None:
            return None
        try:
            return Path(path).read_bytes()
        except OSError as exc:
            raise ValueError(f"{what} {path}: cannot read: {exc.strerror or exc}") from None

    return grpc.ssl_channel_credentials(
        root_certificates=read(ca, "TLS CA"),
        private_key=read(key, "TLS key"),
        certificate_chain=read(cert, "TLS certificate"),
    )
