"""Service configuration from environment variables and command-line flags, validated at start-up.

Every field of a settings class is both an environment variable (`STORYTELLING_<SERVICE>_<FIELD>`) and a
flag (`--field-name`); flags win. Invalid values stop the service before it binds a port, with one line
per bad field naming both spellings.
"""

from __future__ import annotations

import argparse
import json
import types
import typing
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from storytelling.api.vocabulary import DEFAULT_PORTS


class ConfigError(Exception):
    """Raised when configuration is invalid; the message lists every offending field."""


class ServiceSettings(BaseSettings):
    """Settings shared by every service. Subclasses add their own fields and env prefix."""

    model_config = SettingsConfigDict(env_prefix="STORYTELLING_", extra="ignore", validate_default=True)

    host: str = Field("127.0.0.1", description="Address to bind the gRPC and metrics servers to.")
    # Each service overrides these with its own DEFAULT_PORTS entry.
    port: int = Field(DEFAULT_PORTS["orchestrator"].grpc, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        DEFAULT_PORTS["orchestrator"].metrics,
        ge=0,
        le=65535,
        description="Prometheus metrics port; 0 disables.",
    )
    grace_period_s: float = Field(
        10.0, ge=0, le=3600, description="Time in-flight RPCs get to finish after SIGTERM."
    )
    max_message_mb: int = Field(64, ge=1, le=2047, description="Largest request or response message.")
    max_concurrent_rpcs: int | None = Field(
        None, ge=1, description="RPCs served at once; more get RESOURCE_EXHAUSTED. Unset: unbounded."
    )
    ready_poll_s: float = Field(1.0, gt=0, le=60, description="How often engine readiness is re-checked.")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Least severe level logged."
    )
    log_format: Literal["json", "text"] = Field(
        "json", description="json: one object per line, for log collectors; text: for humans."
    )
    tls_cert_file: Path | None = Field(
        None,
        description="PEM certificate chain to serve gRPC over TLS (with tls_key_file); reloaded when it "
        "changes. Unset: plaintext.",
    )
    tls_key_file: Path | None = Field(None, description="PEM private key of tls_cert_file.")
    tls_client_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle that signs client certificates: set it to require mutual TLS.",
    )
    tls_client_identities: list[str] = Field(
        [],
        description="Client certificate identities (SAN DNS name, URI or IP, or subject CN) allowed to "
        "call, with mutual TLS; empty: any certificate the client CA signed.",
    )
    auth_tokens_file: Path | None = Field(
        None,
        description="JSON token file, or a directory of them (a Kubernetes Secret mount), holding token "
        "digests, identities and scopes; every RPC but health then needs a bearer token. Reloaded when "
        "it changes. Unset: no token authentication.",
    )
    credentials_reload_s: float = Field(
        5.0, gt=0, le=3600, description="How often certificate and token files are checked for changes."
    )
    metrics_host: str | None = Field(
        None, description="Address to bind the metrics endpoint to, if not host's (a pod-internal one)."
    )
    metrics_tls: bool = Field(
        False,
        description="Serve /metrics over HTTPS with the gRPC certificate (and, with tls_client_ca_file, "
        "require a client certificate).",
    )
    health_port: int = Field(
        0,
        ge=0,
        le=65535,
        description="Extra plaintext port serving only grpc.health.v1, for probes that cannot speak TLS "
        "(Kubernetes gRPC probes); 0 disables.",
    )

    @model_validator(mode="after")
    def _tls_settings_agree(self) -> Self:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together: set both or neither")
        if self.tls_client_ca_file is not None and self.tls_cert_file is None:
            raise ValueError("tls_client_ca_file (mutual TLS) needs tls_cert_file and tls_key_file")
        if self.tls_client_identities and self.tls_client_ca_file is None:
            raise ValueError("tls_client_identities needs tls_client_ca_file (mutual TLS)")
        if self.metrics_tls and self.tls_cert_file is None:
            raise ValueError("metrics_tls needs tls_cert_file and tls_key_file")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @staticmethod
    def env(service: str) -> SettingsConfigDict:
        """The model_config of a service's settings: env prefix `STORYTELLING_<SERVICE>_`."""
        return SettingsConfigDict(
            env_prefix=f"STORYTELLING_{service.upper()}_", extra="ignore", validate_default=True
        )

    @classmethod
    def env_name(cls, field: str) -> str:
        return f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @classmethod
    def load(cls, argv: list[str] | None = None) -> Self:
        """Reads the environment, then `argv` flags; raises ConfigError naming every bad field."""
        parser = argparse.ArgumentParser(prog=cls.__name__, exit_on_error=False)
        for name, info in cls.model_fields.items():
            parser.add_argument(
                f"--{name.replace('_', '-')}", dest=name, default=None, help=info.description or None
            )
        try:
            flags, unknown = parser.parse_known_args(argv or [])
        except argparse.ArgumentError as exc:
            raise ConfigError(str(exc)) from None
        if unknown:
            raise ConfigError(f"unknown flags: {' '.join(unknown)}")
        overrides = {k: v for k, v in vars(flags).items() if v is not None}
        for name, value in overrides.items():
            if _is_structured(cls.model_fields[name].annotation):
                try:
                    overrides[name] = json.loads(value)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{name} (--{name.replace('_', '-')}): not valid JSON: {exc}") from None
        try:
            return cls(**overrides)
        except ValidationError as exc:
            lines = []
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"])
                if not field:  # a check across fields: its message names them
                    lines.append(error["msg"].removeprefix("Value error, "))
                    continue
                source = f"--{field.replace('_', '-')}" if field in overrides else cls.env_name(field)
                lines.append(f"{field} ({source}): {error['msg']}, got {error.get('input')!r}")
            raise ConfigError("invalid configuration:\n  " + "\n  ".join(lines)) from None


def _is_structured(annotation: Any) -> bool:
    """Whether a field takes JSON on the command line (lists, dicts, models), as it does in the env."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return any(_is_structured(arg) for arg in typing.get_args(annotation) if arg is not type(None))
    origin = typing.get_origin(annotation) or annotation
    return origin in (list, dict, tuple, set) or (isinstance(origin, type) and issubclass(origin, BaseModel))
