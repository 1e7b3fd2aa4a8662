"""Token files for tests: real random tokens, stored by digest as operators are told to store them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from storytelling.api.credentials import new_token, token_digest


@dataclass(frozen=True)
class Token:
    identity: str
    scopes: tuple[str, ...]
    value: str

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.value}"),)


def make(identity: str, *scopes: str) -> Token:
    return Token(identity, scopes, new_token())


def write(path: Path, *tokens: Token) -> Path:
    entries = [
        {"identity": t.identity, "scopes": list(t.scopes), "sha256": token_digest(t.value)} for t in tokens
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps({"tokens": entries}))
    temporary.replace(path)
    return path
