"""The SDK and the `storytelling` command against a service with TLS and tokens: flags, environment,
and errors that say what is missing without repeating the token."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest

from storytelling.client import ChannelOptions, Client, UnauthenticatedError, UnavailableError
from storytelling.api.credentials import channel_credentials, new_token
from storytelling.runtime.config import ServiceSettings
from tests.client.services import TestServices
from tests.client.server import serve_in_thread
from tests.client.test_cli import storytelling
from tests.security import tokens
from tests.security.pki import Authority


@pytest.fixture
def secured(tmp_path: Path):
    """The orchestrator of the SDK tests (tests/client/services.py) behind TLS and tokens; yields (address, CA, token, token file)."""
    ca = Authority(tmp_path / "ca")
    server = ca.issue("orchestrator")
    alice = tokens.make("alice", "read", "write")
    settings = ServiceSettings(
        port=0,
        metrics_port=0,
        ready_poll_s=0.05,
        tls_cert_file=server.cert,
        tls_key_file=server.key,
        auth_tokens_file=tokens.write(tmp_path / "tokens.json", alice),
    )
    token_file = tmp_path / "alice.token"
    token_file.write_text(alice.value + "\n")
    credentials = channel_credentials(ca.cert)
    with serve_in_thread(
        lambda: TestServices(tmp_path / "data"), settings=settings, credentials=credentials
    ) as address:
        yield address, ca, alice.value, token_file


def test_channel_options_take_the_token_from_the_environment_and_never_show_it(monkeypatch, tmp_path):
    token = new_token()
    monkeypatch.setenv("STORYTELLING_TOKEN", token)
    options = ChannelOptions()
    assert options.call_metadata() == (("authorization", f"Bearer {token}"),)
    assert token not in repr(options)
    monkeypatch.delenv("STORYTELLING_TOKEN")
    (tmp_path / "t").write_text(f"{token}\n")
    monkeypatch.setenv("STORYTELLING_TOKEN_FILE", str(tmp_path / "t"))
    assert ChannelOptions().token == token
    assert ChannelOptions(token=None).call_metadata() == ()
    with pytest.raises(ValueError, match="token: must be") as error:
        ChannelOptions(token="has a space in it, so it is not a token").call_metadata()
    assert "space in it" not in str(error.value)


def test_the_sdk_over_tls_with_a_token(secured):
    address, ca, token, _ = secured
    with Client(address, options=ChannelOptions.tls(ca.cert, token=token)) as client:
        assert list(client.list_jobs()) == []
    with (
        Client(address, options=ChannelOptions.tls(ca.cert, token=None)) as client,
        pytest.raises(UnauthenticatedError, match="no token was sent") as missing,
    ):
        list(client.list_jobs())
    assert missing.value.token_sent is False and missing.value.code == grpc.StatusCode.UNAUTHENTICATED
    stranger = new_token()
    with (
        Client(address, options=ChannelOptions.tls(ca.cert, token=stranger)) as client,
        pytest.raises(UnauthenticatedError, match="is not accepted") as rejected,
    ):
        list(client.list_jobs())
    assert stranger not in str(rejected.value)
    with Client(address, options=ChannelOptions(token=token)) as plaintext, pytest.raises(UnavailableError):
        list(plaintext.list_jobs())


def test_cli_flags_and_environment(secured, tmp_path):
    address, ca, token, token_file = secured
    ok = storytelling("list", "--tls-ca", str(ca.cert), "--token-file", str(token_file), address=address)
    assert ok.returncode == 0, ok.stderr
    by_env = storytelling(
        "list", address=address, env={"STORYTELLING_TLS_CA": str(ca.cert), "STORYTELLING_TOKEN": token}
    )
    assert by_env.returncode == 0, by_env.stderr
    by_flag = storytelling("list", "--tls-ca", str(ca.cert), "--token", token, address=address)
    assert by_flag.returncode == 0, by_flag.stderr

    missing = storytelling("list", "--tls-ca", str(ca.cert), address=address, env={"STORYTELLING_TOKEN": ""})
    assert missing.returncode == 7
    assert "authentication failed" in missing.stderr and "missing bearer token" in missing.stderr
    assert "pass --token or --token-file, or set STORYTELLING_TOKEN" in missing.stderr

    stranger = new_token()
    bad = storytelling("list", "--tls-ca", str(ca.cert), "--token", stranger, address=address)
    assert bad.returncode == 7 and "unknown, revoked or expired" in bad.stderr
    assert stranger not in bad.stderr + bad.stdout

    plaintext = storytelling("list", "--token", token, address=address)
    assert plaintext.returncode == 5 and "--tls" in plaintext.stderr
    other = Authority(tmp_path / "other", "other CA")
    wrong_ca = storytelling("list", "--tls-ca", str(other.cert), "--token", token, address=address)
    assert wrong_ca.returncode == 5 and "TLS handshake with the service failed" in wrong_ca.stderr
    assert token not in wrong_ca.stderr

    unreadable = storytelling("list", "--tls-ca", str(tmp_path / "nope.crt"), address=address)
    assert unreadable.returncode == 1 and "TLS CA" in unreadable.stderr and "nope.crt" in unreadable.stderr


def test_token_create_prints_a_token_and_a_digest_entry_that_a_service_accepts(tmp_path):
    made = storytelling("token", "create", "ci-bot", "--scope", "read")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    entry = made.stderr.splitlines()[-1]
    assert token.startswith("stp_") and token not in entry
    (tmp_path / "tokens.json").write_text(f'{{"tokens": [{entry}]}}')
    from storytelling.runtime.auth import TokenStore

    assert TokenStore(tmp_path / "tokens.json").lookup(token).identity == "ci-bot"
