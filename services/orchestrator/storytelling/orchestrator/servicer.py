"""PipelineService gRPC adapter: requests to JobManager calls, results back; errors map in the runtime.

The caller is the principal the runtime authenticated for this RPC (`auth.current()`).
"""

from collections.abc import AsyncIterator

import grpc

from storytelling.runtime import auth
from storytelling.v1 import pipeline_pb2, pipeline_pb2_grpc

from .jobs import JobManager


class PipelineServicer(pipeline_pb2_grpc.PipelineServiceServicer):
    def __init__(self, jobs: JobManager):
        self._jobs = jobs

    async def CreateJob(self, request: pipeline_pb2.CreateJobRequest, context: grpc.aio.ServicerContext):
        return await self._jobs.create(request.spec, request.request_id, auth.current())

    async def WatchJob(
        self, request: pipeline_pb2.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pipeline_pb2.JobEvent]:
        async for event in self._jobs.watch(
            request.job_id, request.after_sequence, auth.current(), omit_results=request.omit_results
        ):
            yield event

    async def GetJob(self, request: pipeline_pb2.GetJobRequest, context: grpc.aio.ServicerContext):
        return await self._jobs.get(request.job_id, auth.current(), omit_items=request.omit_items)

    async def ListJobs(self, request: pipeline_pb2.ListJobsRequest, context: grpc.aio.ServicerContext):
        jobs, token = await self._jobs.list_jobs(
            request.page_size, request.page_token, request.states, auth.current()
        )
        return pipeline_pb2.ListJobsResponse(jobs=jobs, next_page_token=token)

    async def ListItems(self, request: pipeline_pb2.ListItemsRequest, context: grpc.aio.ServicerContext):
        items, token = await self._jobs.list_items(
            request.job_id,
            request.page_size,
            request.page_token,
            request.states,
            auth.current(),
            omit_results=request.omit_results,
        )
        return pipeline_pb2.ListItemsResponse(items=items, next_page_token=token)

    async def CancelJob(self, request: pipeline_pb2.CancelJobRequest, context: grpc.aio.ServicerContext):
        return await self._jobs.cancel(request.job_id, auth.current())

    async def RunItem(self, request: pipeline_pb2.RunItemRequest, context: grpc.aio.ServicerContext):
        return await self._jobs.run_item(request.spec, auth.current())
