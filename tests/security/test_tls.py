"""TLS on the shared runtime: trust, rotation on disk, mutual TLS with identities, metrics over HTTPS."""

from __future__ import annotations

import asyncio
import os
import re
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from storytelling.api.credentials import channel_credentials
from storytelling.runtime.process import free_port
from storytelling.runtime.testing import running_service
from storytelling.v1 import story_pb2, story_pb2_grpc
from tests.runtime.probe import ProbeService, ProbeSettings
from tests.security.pki import Authority, Issued, common_name

RELOAD_S = 0.05


def settings(server: Issued, **overrides) -> ProbeSettings:
    values = {
        "port": 0,
        "metrics_port": 0,
        "ready_poll_s": 0.05,
        "tls_cert_file": server.cert,
        "tls_key_file": server.key,
        "credentials_reload_s": RELOAD_S,
    }
    return ProbeSettings(**{**values, **overrides})


async def list_modes(address: str, credentials: grpc.ChannelCredentials | None) -> grpc.StatusCode:
    """A fresh connection (so a fresh handshake) and one RPC; the status code it ends with."""
    channel = (
        grpc.aio.secure_channel(address, credentials) if credentials else grpc.aio.insecure_channel(address)
    )
    async with channel:
        try:
            await story_pb2_grpc.StoryServiceStub(channel).ListModes(story_pb2.ListModesRequest(), timeout=5)
        except grpc.aio.AioRpcError as error:
            return error.code()
    return grpc.StatusCode.OK


async def test_tls_serves_clients_that_trust_its_ca_and_refuses_plaintext_and_other_cas(tmp_path):
    ca, other = Authority(tmp_path / "ca"), Authority(tmp_path / "other", "another CA")
    server = ca.issue("probe")
    trusted = channel_credentials(ca.cert)
    async with running_service(ProbeService(settings(server)), settings(server), credentials=trusted) as ch:
        address = ch.server.address
        assert await list_modes(address, trusted) == grpc.StatusCode.OK
        assert await list_modes(address, channel_credentials(other.cert)) == grpc.StatusCode.UNAVAILABLE
        assert await list_modes(address, None) == grpc.StatusCode.UNAVAILABLE


def secret_mount(directory: Path, version: str, issued: Issued) -> Issued:
    """Writes `issued` the way the kubelet updates a Secret volume: files in a new hidden directory,
    then `..data` swapped to it in one rename; tls.crt and tls.key are links through `..data`."""
    target = directory / f"..{version}"
    target.mkdir(parents=True)
    (target / "tls.crt").write_bytes(issued.cert.read_bytes())
    (target / "tls.key").write_bytes(issued.key.read_bytes())
    link = directory / "..data_tmp"
    link.symlink_to(target.name)
    os.replace(link, directory / "..data")
    for name in ("tls.crt", "tls.key"):
        if not (directory / name).is_symlink():
            (directory / name).symlink_to(f"..data/{name}")
    return Issued(directory / "tls.crt", directory / "tls.key", issued.name)


async def until(predicate, timeout: float = 10.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := await predicate()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not met")
        await asyncio.sleep(RELOAD_S)
    return result


async def test_a_certificate_rotated_on_disk_is_served_to_new_connections_without_a_restart(tmp_path):
    old_ca, new_ca = Authority(tmp_path / "old", "old CA"), Authority(tmp_path / "new", "new CA")
    mount = tmp_path / "secret"
    server = secret_mount(mount, "v1", old_ca.issue("before"))
    trusts_old, trusts_new = channel_credentials(old_ca.cert), channel_credentials(new_ca.cert)
    probe = settings(server)
    async with running_service(ProbeService(probe), probe, credentials=trusts_old) as channel:
        address = channel.server.address
        assert await list_modes(address, trusts_new) == grpc.StatusCode.UNAVAILABLE

        secret_mount(mount, "v2", new_ca.issue("after"))  # what cert-manager and the kubelet do
        await until(lambda: _ok(address, trusts_new))
        assert await list_modes(address, trusts_old) == grpc.StatusCode.UNAVAILABLE
        assert common_name(channel.server.certificates.pair.cert) == "after"
        # The connection opened before the rotation keeps working.
        assert (await story_pb2_grpc.StoryServiceStub(channel).ListModes(story_pb2.ListModesRequest())).modes


async def _ok(address: str, credentials: grpc.ChannelCredentials) -> bool:
    return await list_modes(address, credentials) == grpc.StatusCode.OK


async def test_a_half_written_rotation_is_refused_and_the_current_certificate_stays(tmp_path, caplog):
    ca = Authority(tmp_path / "ca")
    server = ca.issue("probe")
    trusted = channel_credentials(ca.cert)
    probe = settings(server)
    async with running_service(ProbeService(probe), probe, credentials=trusted) as channel:
        address = channel.server.address
        replacement = ca.issue("replacement", into=tmp_path / "next")
        server.cert.write_bytes(replacement.cert.read_bytes())  # the key is not written yet
        await asyncio.sleep(3 * RELOAD_S)
        for _ in range(3):
            assert await list_modes(address, trusted) == grpc.StatusCode.OK
        assert common_name(channel.server.certificates.pair.cert) == "probe"
        assert "certificate change refused" in caplog.text

        server.key.write_bytes(replacement.key.read_bytes())  # now the pair agrees again
        await until(lambda: _served(channel, "replacement"))
        assert await list_modes(address, trusted) == grpc.StatusCode.OK


async def _served(channel, name: str) -> bool:
    await list_modes(channel.server.address, channel_credentials(None))  # a handshake asks for the cert
    return common_name(channel.server.certificates.pair.cert) == name


async def test_mutual_tls_requires_a_client_certificate_from_the_ca_with_an_allowed_identity(tmp_path):
    ca, rogue = Authority(tmp_path / "ca"), Authority(tmp_path / "rogue", "rogue CA")
    server = ca.issue("story")
    orchestrator = ca.issue("orchestrator", dns=("orchestrator.storytelling.svc",), ips=())
    intruder = ca.issue("intruder", dns=("intruder.example",), ips=())
    forged = rogue.issue("orchestrator", dns=("orchestrator.storytelling.svc",), ips=())
    probe = settings(
        server, tls_client_ca_file=ca.cert, tls_client_identities=["orchestrator.storytelling.svc"]
    )

    def client(issued: Issued | None) -> grpc.ChannelCredentials:
        return channel_credentials(ca.cert, issued.cert if issued else None, issued.key if issued else None)

    async with running_service(ProbeService(probe), probe, credentials=client(orchestrator)) as channel:
        address = channel.server.address
        assert await list_modes(address, client(orchestrator)) == grpc.StatusCode.OK
        assert await list_modes(address, client(None)) == grpc.StatusCode.UNAVAILABLE
        assert await list_modes(address, client(forged)) == grpc.StatusCode.UNAVAILABLE
        assert await list_modes(address, client(intruder)) == grpc.StatusCode.PERMISSION_DENIED


def fetch(url: str, context: ssl.SSLContext | None = None) -> str:
    with urllib.request.urlopen(url, timeout=5, context=context) as response:  # noqa: S310 - test URL
        return response.read().decode()


async def test_metrics_over_https_on_their_own_address(tmp_path):
    ca = Authority(tmp_path / "ca")
    server = ca.issue("probe", ips=("127.0.0.1", "127.0.0.2"))
    port = free_port()
    probe = settings(server, metrics_port=port, metrics_tls=True, metrics_host="127.0.0.2")
    async with running_service(
        ProbeService(probe), probe, credentials=channel_credentials(ca.cert)
    ) as channel:
        await story_pb2_grpc.StoryServiceStub(channel).ListModes(story_pb2.ListModesRequest())
        port = channel.server.metrics_port
        trusting = ssl.create_default_context(cafile=ca.cert)
        body = await asyncio.to_thread(fetch, f"https://127.0.0.2:{port}/metrics", trusting)
        assert 'grpc_server_handled_total{grpc_code="OK",grpc_method="ListModes"' in body
        with pytest.raises(urllib.error.URLError):  # not on the gRPC address
            await asyncio.to_thread(fetch, f"https://127.0.0.1:{port}/metrics", trusting)
        with pytest.raises((urllib.error.URLError, ConnectionError)):  # not in plaintext
            await asyncio.to_thread(fetch, f"http://127.0.0.2:{port}/metrics")
        with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
            await asyncio.to_thread(fetch, f"https://127.0.0.2:{port}/metrics", ssl.create_default_context())
        # A scraper that connects and says nothing does not hold up the others.
        _, silent = await asyncio.open_connection("127.0.0.2", port)
        assert "grpc_server_in_flight" in await asyncio.to_thread(
            fetch, f"https://127.0.0.2:{port}/metrics", trusting
        )
        silent.close()


async def test_the_health_port_answers_probes_in_plaintext_and_serves_nothing_else(tmp_path):
    ca = Authority(tmp_path / "ca")
    server = ca.issue("probe")
    probe = settings(server, health_port=free_port())
    async with running_service(
        ProbeService(probe), probe, credentials=channel_credentials(ca.cert)
    ) as channel:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{channel.server.health_port}") as plain:
            reply = await health_pb2_grpc.HealthStub(plain).Check(health_pb2.HealthCheckRequest())
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await story_pb2_grpc.StoryServiceStub(plain).ListModes(story_pb2.ListModesRequest())
            assert error.value.code() == grpc.StatusCode.UNIMPLEMENTED


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--tls-key-file", "k.pem"], "tls_cert_file and tls_key_file go together"),
        (["--tls-client-ca-file", "ca.pem"], "tls_client_ca_file (mutual TLS) needs tls_cert_file"),
        (["--tls-client-identities", '["orchestrator"]'], "tls_client_identities needs tls_client_ca_file"),
        (["--metrics-tls", "true"], "metrics_tls needs tls_cert_file"),
    ],
)
def test_settings_that_do_not_fit_together_are_refused(flags, message):
    from storytelling.runtime.config import ConfigError

    with pytest.raises(ConfigError, match=re.escape(message)):
        ProbeSettings.load(flags)


def test_unusable_certificate_or_token_files_stop_the_service_before_it_serves(tmp_path):
    ca = Authority(tmp_path / "ca")
    server, other = ca.issue("probe"), ca.issue("other", into=tmp_path / "other")
    (tmp_path / "tokens.json").write_text('{"tokens": [{"identity": "x"}]}')
    cases = {
        "cannot read": ["--tls-cert-file", str(tmp_path / "missing.crt"), "--tls-key-file", str(server.key)],
        "private key does not match": ["--tls-cert-file", str(server.cert), "--tls-key-file", str(other.key)],
        "scopes": ["--auth-tokens-file", str(tmp_path / "tokens.json")],
    }
    for message, flags in cases.items():
        result = subprocess.run(
            [sys.executable, "-m", "tests.runtime.probe", "--port", "0", "--metrics-port", "0", *flags],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 2, result.stderr
        assert "cannot start" in result.stderr and message in result.stderr, result.stderr
