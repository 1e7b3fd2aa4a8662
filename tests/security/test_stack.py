"""The local stack as real processes with mutual TLS between the services and tokens on every one of
them: the CLI paints a job end to end over TLS with a token, and what lacks a credential is refused."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from storytelling.api.credentials import channel_credentials
from storytelling.stack.local import LocalStack, StackOptions, StackSecurity
from storytelling.v1 import pipeline_pb2, pipeline_pb2_grpc, story_pb2, story_pb2_grpc
from tests.client.test_cli import storytelling
from tests.security import tokens
from tests.security.pki import Authority

pytestmark = pytest.mark.slow


def test_the_local_stack_with_mutual_tls_and_tokens_runs_a_job_end_to_end(tmp_path: Path):
    ca = Authority(tmp_path / "ca")
    server = ca.issue("services")
    client = ca.issue("orchestrator", dns=("orchestrator.local",), ips=())
    alice, service = tokens.make("alice", "read", "write"), tokens.make("orchestrator", "read", "write")
    (service_token := tmp_path / "orchestrator.token").write_text(service.value)
    security = StackSecurity(
        server.cert,
        server.key,
        ca.cert,
        tokens_file=tokens.write(tmp_path / "tokens.json", alice, service),
        service_token_file=service_token,
        client_cert_file=client.cert,
        client_key_file=client.key,
    )
    options = StackOptions(data_dir=tmp_path / "runs", ephemeral_ports=True, security=security)
    with LocalStack(options) as stack:
        address = stack.up()["orchestrator"]
        painted = storytelling(
            "paint",
            "-n",
            "1",
            "--max-tokens",
            "96",
            "--max-attempts",
            "1",
            "--tls-ca",
            str(ca.cert),
            address=address,
            env={"STORYTELLING_TOKEN": alice.value},
            timeout=600,
        )
        assert painted.returncode == 0, painted.stdout + painted.stderr
        assert "succeeded" in painted.stdout
        job_id = painted.stdout.split()[1]
        job = json.loads(
            storytelling(
                "status", job_id, "--json", "--tls-ca", str(ca.cert), "--token", alice.value, address=address
            ).stdout
        )
        assert job["state"] == "JOB_STATE_SUCCEEDED" and job["items"][0]["story"]["text"]

        with grpc.secure_channel(address, channel_credentials(ca.cert)) as channel:
            stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
            with pytest.raises(grpc.RpcError) as missing:
                stub.ListJobs(pipeline_pb2.ListJobsRequest(), timeout=10)
            assert missing.value.code() == grpc.StatusCode.UNAUTHENTICATED
        with grpc.insecure_channel(address) as plaintext:
            with pytest.raises(grpc.RpcError) as refused:
                pipeline_pb2_grpc.PipelineServiceStub(plaintext).ListJobs(
                    pipeline_pb2.ListJobsRequest(), metadata=alice.metadata, timeout=10
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        # The stage services take calls only from a client certificate the CA signed.
        story = stack.services["story"].address
        with grpc.secure_channel(story, channel_credentials(ca.cert)) as no_certificate:
            with pytest.raises(grpc.RpcError) as handshake:
                story_pb2_grpc.StoryServiceStub(no_certificate).ListEngines(
                    story_pb2.ListEnginesRequest(), metadata=service.metadata, timeout=10
                )
            assert handshake.value.code() == grpc.StatusCode.UNAVAILABLE
        logs = "".join(p.logs() for p in stack.services.values())
        assert alice.value not in logs and service.value not in logs
        assert '"tls": "mutual"' in stack.services["story"].logs()
