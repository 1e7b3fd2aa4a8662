"""Every RPC of every service, called without a token, with a bad or malformed one, and with a token
that lacks the method's scope: not one of those calls may get past authentication.

The methods come from the service descriptors, so an RPC added later is covered without editing this
test. The control calls, with a token that has every scope, prove that the same requests do reach the
servicers, so a refusal here is the authentication's doing and not the request's.
"""

from __future__ import annotations

import grpc
import pytest
from google.protobuf import descriptor, message_factory
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from storytelling.api.credentials import new_token
from storytelling.runtime.auth import Scope, required_scope
from storytelling.v1 import evaluation_pb2, pipeline_pb2, render_pb2, story_pb2
from tests.security.services import secured_services

SERVICES = {
    "story": story_pb2.DESCRIPTOR.services_by_name["StoryService"],
    "render": render_pb2.DESCRIPTOR.services_by_name["RenderService"],
    "evaluation": evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"],
    "orchestrator": pipeline_pb2.DESCRIPTOR.services_by_name["PipelineService"],
}
AUTH_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


async def call(
    channel: grpc.aio.Channel, method: descriptor.MethodDescriptor, metadata: tuple = ()
) -> grpc.StatusCode:
    """Calls `method` with a default request; the status it ends with."""
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
    multicallable = kind(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    try:
        reply = multicallable(request_type(), metadata=metadata, timeout=60)
        if method.server_streaming:
            async for _ in reply:
                pass
        else:
            await reply
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


@pytest.fixture
async def secured(tmp_path, embedder):
    async with secured_services(tmp_path, embedder) as running:
        yield running


async def test_no_rpc_of_any_service_accepts_an_unauthorised_call(secured):
    stranger = new_token()
    attempts: list[tuple[str, str, grpc.StatusCode]] = []
    for name, service in SERVICES.items():
        channel = secured.channels[name]
        for method in service.methods:
            scope = required_scope(f"/{service.full_name}/{method.name}")
            lacking = secured.tokens["writer" if scope is Scope.READ else "reader"]
            unauthorised = {
                "no token": ((), grpc.StatusCode.UNAUTHENTICATED),
                "unknown token": (
                    (("authorization", f"Bearer {stranger}"),),
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                "not a bearer token": (
                    (("authorization", "Basic YWxpY2U6c2VjcmV0"),),
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                "empty bearer": ((("authorization", "Bearer "),), grpc.StatusCode.UNAUTHENTICATED),
                f"no {scope} scope": (lacking.metadata, grpc.StatusCode.PERMISSION_DENIED),
            }
            for label, (metadata, expected) in unauthorised.items():
                code = await call(channel, method, metadata)
                attempts.append((f"{name}.{method.name}", label, code))
                assert code == expected, (name, method.name, label, code)
    accepted = [attempt for attempt in attempts if attempt[2] not in AUTH_CODES]
    assert len(attempts) == 5 * sum(len(s.methods) for s in SERVICES.values()) == 115  # 23 RPCs
    assert accepted == []


async def test_the_same_calls_with_the_right_scope_reach_every_servicer(secured):
    for name, service in SERVICES.items():
        for method in service.methods:
            code = await call(secured.channels[name], method, secured.tokens["admin"].metadata)
            assert code not in AUTH_CODES, (name, method.name, code)


async def test_health_needs_no_token_and_reflection_needs_one(secured):
    listing = reflection_pb2.ServerReflectionRequest(list_services="")
    for name, service in SERVICES.items():
        channel = secured.channels[name]
        health = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service.full_name)
        )
        assert health.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            async for _ in reflection.ServerReflectionInfo(iter([listing])):
                pass
        assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
        async for reply in reflection.ServerReflectionInfo(
            iter([listing]), metadata=secured.tokens["reader"].metadata
        ):
            assert service.full_name in {s.name for s in reply.list_services_response.service}


JOB_METHODS = [m for m in SERVICES["orchestrator"].methods if "job_id" in m.input_type.fields_by_name]


async def call_on_job(channel, method, job_id: str, metadata) -> tuple[grpc.StatusCode, str]:
    request_type = message_factory.GetMessageClass(method.input_type)
    response_type = message_factory.GetMessageClass(method.output_type)
    path = f"/{method.containing_service.full_name}/{method.name}"
    kind = channel.unary_stream if method.server_streaming else channel.unary_unary
    multicallable = kind(
        path,
        request_serializer=request_type.SerializeToString,
        response_deserializer=response_type.FromString,
    )
    try:
        reply = multicallable(request_type(job_id=job_id), metadata=metadata, timeout=30)
        if method.server_streaming:
            async for _ in reply:
                break
        else:
            await reply
    except grpc.aio.AioRpcError as error:
        return error.code(), error.details()
    return grpc.StatusCode.OK, ""


async def test_another_identitys_job_is_refused_like_a_job_that_does_not_exist(secured):
    from storytelling.v1 import pipeline_pb2_grpc

    channel = secured.channels["orchestrator"]
    alice, bob = secured.tokens["alice"], secured.tokens["bob"]
    stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
    job = await stub.CreateJob(
        pipeline_pb2.CreateJobRequest(spec=pipeline_pb2.JobSpec(items=1, seed=1)), metadata=alice.metadata
    )
    assert job.owner == "alice"
    assert {m.name for m in JOB_METHODS} >= {"GetJob", "WatchJob", "CancelJob"}
    missing = "f" * 32
    for method in JOB_METHODS:
        code, details = await call_on_job(channel, method, job.id, bob.metadata)
        assert code == grpc.StatusCode.PERMISSION_DENIED, (method.name, code)
        absent_code, absent_details = await call_on_job(channel, method, missing, bob.metadata)
        assert (absent_code, absent_details.replace(missing, "ID")) == (code, details.replace(job.id, "ID"))
        for bad_id in ("../../etc/passwd", "a/b", "x\x00y", "/abs"):
            code, details = await call_on_job(channel, method, bad_id, bob.metadata)
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("job_id: "), bad_id
        assert (await call_on_job(channel, method, job.id, alice.metadata))[0] not in AUTH_CODES
    listed = await stub.ListJobs(pipeline_pb2.ListJobsRequest(), metadata=bob.metadata)
    assert job.id not in {j.id for j in listed.jobs}
    listed = await stub.ListJobs(pipeline_pb2.ListJobsRequest(), metadata=secured.tokens["admin"].metadata)
    assert job.id in {j.id for j in listed.jobs}


async def test_the_orchestrator_runs_an_item_through_secured_stages(secured):
    from storytelling.v1 import pipeline_pb2_grpc

    stub = pipeline_pb2_grpc.PipelineServiceStub(secured.channels["orchestrator"])
    spec = pipeline_pb2.JobSpec(items=1, seed=3, evaluators=[evaluation_pb2.EVALUATOR_DIVERSITY])
    item = await stub.RunItem(
        pipeline_pb2.RunItemRequest(spec=spec), metadata=secured.tokens["alice"].metadata
    )
    assert item.state == pipeline_pb2.ITEM_STATE_SUCCEEDED, item.error
    assert item.story.text and item.image.data
