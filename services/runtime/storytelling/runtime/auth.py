"""Who is calling and what they may do: token store, scopes, principals. Transport-free.

The runtime authenticates every RPC before the servicer runs (`storytelling.runtime.guard`) and makes
the caller's `Principal` visible to core code through `current()`, as `deadlines` does for the deadline.

Token file (JSON; a directory of such files when it is a Kubernetes Secret mount):

    {"tokens": [
      {"identity": "alice", "scopes": ["read", "write"], "sha256": "<hex digest of the token>"},
      {"identity": "ci", "scopes": ["read"], "token": "stp_...", "expires_at": "2026-01-31T00:00:00Z"}
    ]}

Only digests are kept in memory; a `token` entry is hashed as it is read. One identity may have several
tokens, which is how a token is rotated: add the new one, move the clients, remove the old one.
"""

from __future__ import annotations

import contextvars
import datetime
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from storytelling.api.credentials import DIGEST_PREFIX, SCHEME, SCOPES
from storytelling.runtime.errors import PermissionDenied, Unauthenticated
from storytelling.runtime.watch import FileWatch

log = logging.getLogger("storytelling.auth")


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


READ_PREFIXES = ("Get", "List", "Watch")
READ_SERVICES = frozenset({"grpc.reflection.v1alpha.ServerReflection", "grpc.reflection.v1.ServerReflection"})
_IDENTITY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:/+-]{0,127}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


def required_scope(full_method: str) -> Scope:
    """`read` for Get*, List*, Watch* and reflection; `write` for every other method, so a new method is
    protected until someone decides otherwise."""
    service, _, method = full_method.lstrip("/").partition("/")
    if service in READ_SERVICES or method.startswith(READ_PREFIXES):
        return Scope.READ
    return Scope.WRITE


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller. `identity` is empty for the anonymous caller of a service without auth."""

    identity: str
    scopes: frozenset[Scope]

    def has(self, scope: Scope) -> bool:
        return scope in self.scopes

    @property
    def sees_every_job(self) -> bool:
        return Scope.ADMIN in self.scopes

    def may_access(self, owner: str) -> bool:
        """Whether this caller may see and act on an object created by `owner`."""
        return self.sees_every_job or owner == self.identity


ANONYMOUS = Principal("", frozenset(Scope))
"""The caller when a service has no authentication: may do everything, owns what it creates as ''."""

_current: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal", default=ANONYMOUS)


def current() -> Principal:
    """The caller of the RPC being served (ANONYMOUS without authentication)."""
    return _current.get()


class acting_as:  # noqa: N801 - used like a function: `with acting_as(principal):`
    """Runs the block as `principal`; None leaves the caller as it is. A class, not a generator: it runs
    on every RPC, and a generator-based context manager costs microseconds there."""

    __slots__ = ("_principal", "_token")

    def __init__(self, principal: Principal | None) -> None:
        self._principal = principal
        self._token: contextvars.Token[Principal] | None = None

    def __enter__(self) -> None:
        if self._principal is not None:
            self._token = _current.set(self._principal)

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            try:
                _current.reset(self._token)
            except ValueError:  # an async generator closed from another task's context
                pass


class TokenFileError(ValueError):
    """A token file cannot be used; the message names the file and entry, never a token."""


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes
    principal: Principal
    expires_at: float | None


def _parse_expiry(value: object, where: str) -> float | None:
    if value is None:
        return None
    try:
        moment = datetime.datetime.fromisoformat(str(value))
    except ValueError:
        raise TokenFileError(f"{where}.expires_at: not an ISO 8601 time: {value!r}") from None
    if moment.tzinfo is None:
        raise TokenFileError(f"{where}.expires_at: needs a time zone, for example a trailing Z")
    return moment.timestamp()


def _parse_entry(entry: object, where: str) -> _Entry:
    if not isinstance(entry, dict):
        raise TokenFileError(f"{where}: must be an object")
    unknown = set(entry) - {"identity", "scopes", "sha256", "token", "expires_at", "comment"}
    if unknown:
        raise TokenFileError(f"{where}: unknown keys {sorted(unknown)}")
    identity = entry.get("identity")
    if not isinstance(identity, str) or not _IDENTITY.fullmatch(identity):
        raise TokenFileError(
            f"{where}.identity: must be 1-128 characters of letters, digits and ._@:/+- "
            f"starting with a letter or digit, got {identity!r}"
        )
    scopes = entry.get("scopes")
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise TokenFileError(
            f"{where}.scopes: must be a non-empty list of {', '.join(SCOPES)}, got {scopes!r}"
        )
    if ("sha256" in entry) == ("token" in entry):
        raise TokenFileError(f"{where}: needs exactly one of sha256 (recommended) or token")
    if "token" in entry:
        token = entry["token"]
        if not isinstance(token, str) or len(token.strip()) < 16:
            raise TokenFileError(f"{where}.token: must be a string of at least 16 characters")
        digest = hashlib.sha256(token.strip().encode()).digest()
    else:
        hex_digest = str(entry["sha256"]).removeprefix(DIGEST_PREFIX).lower()
        if not _HEX_DIGEST.fullmatch(hex_digest):
            raise TokenFileError(f"{where}.sha256: must be 64 hex digits (optionally after 'sha256:')")
        digest = bytes.fromhex(hex_digest)
    principal = Principal(identity, frozenset(Scope(s) for s in scopes))
    return _Entry(digest, principal, _parse_expiry(entry.get("expires_at"), where))


def token_files(path: Path) -> list[Path]:
    """The JSON files behind `path`: itself, or the visible *.json files of a directory (a Kubernetes
    Secret mount keeps its real files behind hidden `..data` links, which these names resolve through)."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    return [path]


def parse_token_files(files: list[Path]) -> dict[bytes, _Entry]:
    entries: dict[bytes, _Entry] = {}
    for file in files:
        try:
            document = json.loads(file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            raise TokenFileError(f"{file}: cannot read: {exc}") from None
        except json.JSONDecodeError as exc:
            raise TokenFileError(f"{file}: not JSON: {exc.msg} at line {exc.lineno}") from None
        tokens = document.get("tokens") if isinstance(document, dict) else None
        if not isinstance(tokens, list):
            raise TokenFileError(f'{file}: must be an object with a "tokens" list')
        for position, raw in enumerate(tokens):
            where = f"{file}: tokens[{position}]"
            entry = _parse_entry(raw, where)
            if entry.digest in entries:
                raise TokenFileError(f"{where}: the same token is listed twice")
            entries[entry.digest] = entry
    return entries


class TokenStore:
    """Token digests to principals, read from `path` and read again when its files change.

    A change that does not parse is refused as a whole, and the tokens in use stay valid: a bad edit must
    not lock everyone out, nor half-apply a revocation.
    """

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock
        self._watch = FileWatch(lambda: token_files(path))
        self._watch.changed()  # stamped before reading: a change while reading is seen at the next check
        self._entries = parse_token_files(token_files(path))
        log.info("tokens loaded", extra={"path": str(path), "tokens": len(self._entries)})

    def __len__(self) -> int:
        return len(self._entries)

    def reload_if_changed(self) -> bool:
        """Reads the files again if they changed; returns whether the tokens in use changed."""
        if not self._watch.changed():
            return False
        try:
            entries = parse_token_files(token_files(self.path))
        except TokenFileError as exc:
            log.error("token file change refused; the previous tokens stay in use: %s", exc)
            return False
        self._entries = entries
        log.info("tokens reloaded", extra={"path": str(self.path), "tokens": len(entries)})
        return True

    def lookup(self, token: str) -> Principal | None:
        """The principal of `token`, or None if it is unknown, revoked or expired.

        The table is keyed by digest, so the lookup's timing depends on the digest of the presented token,
        which an attacker cannot steer towards a stored one; the final comparison is constant-time.
        """
        digest = hashlib.sha256(token.encode()).digest()
        entry = self._entries.get(digest)
        if entry is None or not hmac.compare_digest(entry.digest, digest):
            return None
        if entry.expires_at is not None and self._clock() >= entry.expires_at:
            return None
        return entry.principal


MISSING_TOKEN = (
    f"missing bearer token: this service requires the 'authorization: {SCHEME} <token>' metadata "
    "(SDK and CLI: --token, --token-file or STORYTELLING_TOKEN)"
)
MALFORMED_TOKEN = f"the authorization metadata must be '{SCHEME} <token>'"
REJECTED_TOKEN = "the bearer token is unknown, revoked or expired"


class Authenticator:
    """Checks the authorization metadata of a call and the scope its method needs."""

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    def authenticate(self, authorization: str | None) -> Principal:
        """Raises Unauthenticated saying what is missing or wrong, never repeating the token."""
        if authorization is None:
            raise Unauthenticated(MISSING_TOKEN)
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != SCHEME.lower() or not token:
            raise Unauthenticated(MALFORMED_TOKEN)
        principal = self.tokens.lookup(token)
        if principal is None:
            raise Unauthenticated(REJECTED_TOKEN)
        return principal

    @staticmethod
    def authorize(principal: Principal, scope: Scope, method: str) -> None:
        if not principal.has(scope):
            raise PermissionDenied(
                f"identity {principal.identity!r} lacks the {scope.value!r} scope that {method} needs"
            )


class PeerPolicy:
    """Which client certificate identities (SAN DNS names, URIs or IPs, or the subject CN) may call."""

    def __init__(self, allowed: frozenset[str]) -> None:
        self.allowed = allowed

    def check(self, names: list[str]) -> None:
        if not self.allowed.intersection(names):
            shown = ", ".join(names) or "none"
            raise PermissionDenied(
                f"client certificate identity ({shown}) is not allowed to call this service"
            )
