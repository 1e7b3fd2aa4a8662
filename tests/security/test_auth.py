"""Token authentication: the transport-free core, and the runtime checking every RPC with it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from storytelling.api.credentials import SCOPES, new_token, redact, token_digest
from storytelling.runtime import auth
from storytelling.runtime.auth import Authenticator, Scope, TokenFileError, TokenStore, required_scope
from storytelling.runtime.errors import PermissionDenied, Unauthenticated
from storytelling.runtime.testing import running_service, service_process
from storytelling.v1 import story_pb2, story_pb2_grpc
from tests.runtime.probe import ProbeService, ProbeSettings
from tests.security import tokens
from tests.security.tokens import Token


def test_scopes_are_the_vocabulary_the_sdk_uses():
    assert tuple(Scope) == SCOPES


@pytest.mark.parametrize(
    ("method", "scope"),
    [
        ("/storytelling.v1.PipelineService/GetJob", Scope.READ),
        ("/storytelling.v1.PipelineService/ListJobs", Scope.READ),
        ("/storytelling.v1.PipelineService/WatchJob", Scope.READ),
        ("/storytelling.v1.PipelineService/CreateJob", Scope.WRITE),
        ("/storytelling.v1.PipelineService/CancelJob", Scope.WRITE),
        ("/storytelling.v1.PipelineService/RunItem", Scope.WRITE),
        ("/storytelling.v1.RenderService/RenderStream", Scope.WRITE),
        ("/storytelling.v1.EvaluationService/Diversity", Scope.WRITE),
        ("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", Scope.READ),
        ("/storytelling.v1.Anything/SomeNewMethod", Scope.WRITE),  # protected until decided otherwise
    ],
)
def test_required_scope(method, scope):
    assert required_scope(method) is scope


def test_tokens_are_kept_as_digests_and_checked_with_their_scopes(tmp_path):
    alice, ci = tokens.make("alice", "read", "write"), tokens.make("ci", "read")
    store = TokenStore(tokens.write(tmp_path / "tokens.json", alice, ci))
    check = Authenticator(store)
    principal = check.authenticate(f"Bearer {alice.value}")
    assert principal == auth.Principal("alice", frozenset({Scope.READ, Scope.WRITE}))
    assert check.authenticate(f"bearer   {ci.value} ").identity == "ci"  # scheme is case-insensitive
    assert (
        alice.value not in repr(store.__dict__) and alice.value.encode() not in repr(store.__dict__).encode()
    )
    check.authorize(principal, Scope.WRITE, "CreateJob")
    with pytest.raises(PermissionDenied, match="identity 'ci' lacks the 'write' scope that CreateJob needs"):
        check.authorize(check.authenticate(f"Bearer {ci.value}"), Scope.WRITE, "CreateJob")


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "missing bearer token"),
        ("", "must be 'Bearer <token>'"),
        ("Basic dXNlcjpwYXNz", "must be 'Bearer <token>'"),
        ("Bearer", "must be 'Bearer <token>'"),
        ("Bearer stp_not-a-token-anyone-has", "unknown, revoked or expired"),
    ],
)
def test_missing_and_bad_tokens_are_unauthenticated_without_echo(tmp_path, header, message):
    store = TokenStore(tokens.write(tmp_path / "tokens.json", tokens.make("alice", "read")))
    with pytest.raises(Unauthenticated, match=message) as error:
        Authenticator(store).authenticate(header)
    assert "stp_not-a-token" not in str(error.value)


def test_plaintext_entries_expiry_and_a_secret_mount_directory(tmp_path):
    mount = tmp_path / "secret"
    (mount / "..2024_01").mkdir(parents=True)
    plain, hashed = new_token(), new_token()
    (mount / "..2024_01" / "team.json").write_text(
        json.dumps({"tokens": [{"identity": "team", "scopes": ["read"], "token": plain}]})
    )
    (mount / "..2024_01" / "old.json").write_text(
        json.dumps(
            {
                "tokens": [
                    {
                        "identity": "old",
                        "scopes": ["admin"],
                        "sha256": token_digest(hashed),
                        "expires_at": "2000-01-01T00:00:00Z",
                    }
                ]
            }
        )
    )
    (mount / "..data").symlink_to("..2024_01")
    for name in ("team.json", "old.json"):
        (mount / name).symlink_to(f"..data/{name}")
    store = TokenStore(mount)
    assert len(store) == 2
    assert store.lookup(plain).identity == "team"
    assert store.lookup(hashed) is None  # expired


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("[]", 'must be an object with a "tokens" list'),
        ("{", "not JSON"),
        ('{"tokens": [{"identity": "a b", "scopes": ["read"], "token": "0123456789abcdef"}]}', "identity"),
        ('{"tokens": [{"identity": "a", "scopes": ["root"], "token": "0123456789abcdef"}]}', "scopes"),
        ('{"tokens": [{"identity": "a", "scopes": ["read"]}]}', "exactly one of sha256"),
        ('{"tokens": [{"identity": "a", "scopes": ["read"], "sha256": "abc"}]}', "64 hex digits"),
        ('{"tokens": [{"identity": "a", "scopes": ["read"], "token": "short"}]}', "at least 16"),
        (
            '{"tokens": [{"identity": "a", "scopes": ["read"], "token": "0123456789abcdef", "x": 1}]}',
            "unknown",
        ),
    ],
)
def test_bad_token_files_name_the_entry_and_never_the_token(tmp_path, document, message):
    path = tmp_path / "tokens.json"
    path.write_text(document)
    with pytest.raises(TokenFileError, match=message) as error:
        TokenStore(path)
    assert "0123456789abcdef" not in str(error.value)


def test_reload_applies_changes_and_refuses_a_broken_file(tmp_path, caplog):
    alice, bob = tokens.make("alice", "read"), tokens.make("bob", "read")
    path = tokens.write(tmp_path / "tokens.json", alice)
    store = TokenStore(path)
    assert not store.reload_if_changed()
    tokens.write(path, alice, bob)  # bob added
    assert store.reload_if_changed() and store.lookup(bob.value).identity == "bob"
    path.write_text('{"tokens": [')  # a bad edit: nobody is locked out, nothing half-applied
    assert not store.reload_if_changed()
    assert store.lookup(alice.value) and store.lookup(bob.value)
    assert "token file change refused" in caplog.text
    tokens.write(path, bob)  # alice revoked
    assert store.reload_if_changed()
    assert store.lookup(alice.value) is None and store.lookup(bob.value)


def test_log_redaction_removes_tokens():
    token = new_token()
    text = f"error for {token}; header authorization: Bearer custom-secret-value; bearer {token}"
    assert token not in redact(text) and "custom-secret-value" not in redact(text)
    assert redact("nothing to hide") == "nothing to hide"
    from storytelling.runtime.auth import MISSING_TOKEN

    assert redact(MISSING_TOKEN) == MISSING_TOKEN  # messages about tokens stay readable


# --- through the runtime -------------------------------------------------------------------------------


def probe_with_tokens(path: Path) -> tuple[ProbeService, ProbeSettings]:
    settings = ProbeSettings(
        port=0, metrics_port=0, ready_poll_s=0.05, auth_tokens_file=path, credentials_reload_s=0.05
    )
    return ProbeService(settings), settings


async def status(call) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_every_rpc_but_health_needs_a_token_with_the_right_scope(tmp_path):
    reader, writer = tokens.make("reader", "read"), tokens.make("writer", "write")
    service, settings = probe_with_tokens(tokens.write(tmp_path / "tokens.json", reader, writer))
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)
        modes, write = story_pb2.ListModesRequest(), story_pb2.WriteStoryRequest(seed=1)

        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.ListModes(modes)
        assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "missing bearer token" in missing.value.details()
        assert await status(stub.ListModes(modes, metadata=tokens.make("x", "read").metadata)) == (
            grpc.StatusCode.UNAUTHENTICATED
        )
        assert await status(stub.ListModes(modes, metadata=reader.metadata)) == grpc.StatusCode.OK
        assert (
            await status(stub.WriteStory(write, metadata=reader.metadata))
            == grpc.StatusCode.PERMISSION_DENIED
        )
        assert await status(stub.WriteStory(write, metadata=writer.metadata)) == grpc.StatusCode.OK
        assert (
            await status(stub.ListModes(modes, metadata=writer.metadata)) == grpc.StatusCode.PERMISSION_DENIED
        )
        # Authentication comes first: garbage bytes from a stranger are UNAUTHENTICATED, not INVALID_ARGUMENT.
        raw = channel.unary_unary("/storytelling.v1.StoryService/WriteStory")
        assert await status(raw(b"\xff\xff\xff")) == grpc.StatusCode.UNAUTHENTICATED

        health = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        assert health.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        listing = reflection_pb2.ServerReflectionRequest(list_services="")

        async def reflect(metadata=()):
            async for reply in reflection.ServerReflectionInfo(iter([listing]), metadata=metadata):
                return [s.name for s in reply.list_services_response.service]

        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await reflect()
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        assert "storytelling.v1.StoryService" in await reflect(reader.metadata)

        metrics = channel.server.registry.get_sample_value(
            "grpc_server_handled_total",
            {
                "grpc_service": "storytelling.v1.StoryService",
                "grpc_method": "ListModes",
                "grpc_code": "UNAUTHENTICATED",
            },
        )
        assert metrics == 2


async def test_tokens_are_added_rotated_and_revoked_without_a_restart(tmp_path):
    old, new = tokens.make("alice", "read"), tokens.make("alice", "read")
    path = tokens.write(tmp_path / "tokens.json", old)
    service, settings = probe_with_tokens(path)
    async with running_service(service, settings) as channel:
        stub = story_pb2_grpc.StoryServiceStub(channel)

        async def code(token: Token) -> grpc.StatusCode:
            return await status(stub.ListModes(story_pb2.ListModesRequest(), metadata=token.metadata))

        async def eventually(token: Token, expected: grpc.StatusCode) -> None:
            for _ in range(200):
                if await code(token) == expected:
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"{token.identity} never got {expected}")

        assert await code(new) == grpc.StatusCode.UNAUTHENTICATED
        tokens.write(path, old, new)  # rotation, step 1: both valid
        await eventually(new, grpc.StatusCode.OK)
        assert await code(old) == grpc.StatusCode.OK
        tokens.write(path, new)  # step 2: the old one revoked
        await eventually(old, grpc.StatusCode.UNAUTHENTICATED)
        assert await code(new) == grpc.StatusCode.OK


def test_logs_never_contain_tokens(tmp_path):
    """A real service process logging at DEBUG, called with good, bad and misplaced tokens."""
    good, stranger = tokens.make("alice", "read", "write"), new_token()
    path = tokens.write(tmp_path / "tokens.json", good)
    with service_process(
        "tests.runtime.probe",
        args=["--auth-tokens-file", str(path), "--log-level", "DEBUG", "--log-format", "json"],
    ) as proc:
        with grpc.insecure_channel(proc.address) as channel:
            stub = story_pb2_grpc.StoryServiceStub(channel)
            calls = [
                (story_pb2.ListModesRequest(), good.metadata),
                (story_pb2.ListModesRequest(), (("authorization", f"Bearer {stranger}"),)),
                (story_pb2.ListModesRequest(), (("authorization", stranger),)),
            ]
            for request, metadata in calls:
                try:
                    stub.ListModes(request, metadata=metadata)
                except grpc.RpcError:
                    pass
            # A token pasted into a request field that ends up in an error message and the log.
            bad = story_pb2.WriteStoryRequest(
                seed=-1, options=story_pb2.StoryRequestOptions(theme=good.value)
            )
            with pytest.raises(grpc.RpcError) as echoed:
                stub.WriteStory(bad, metadata=good.metadata)
            assert good.value in echoed.value.details()  # the caller gets its own field back...
        logs = proc.logs()
    assert "probe asked to fail (theme '[redacted]')" in logs  # ...the log does not
    assert '"rpc failed"' in logs and "UNAUTHENTICATED" in logs
    assert good.value not in logs and stranger not in logs
    assert os.fspath(path) in logs  # what it does log: where the tokens came from
