"""StoryService over gRPC: protobuf in, core call, protobuf out. Errors are the core's ServiceErrors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc

from storytelling.story import convert
from storytelling.story.core import Storyteller
from storytelling.v1 import common_pb2, story_pb2, story_pb2_grpc


class StoryServicer(story_pb2_grpc.StoryServiceServicer):
    def __init__(self, storyteller: Storyteller) -> None:
        self.storyteller = storyteller

    async def WriteStory(
        self, request: story_pb2.WriteStoryRequest, context: grpc.aio.ServicerContext
    ) -> story_pb2.WriteStoryResponse:
        seed = request.seed if request.HasField("seed") else None
        written = await self.storyteller.write(convert.options(request.options), seed, request.story_id)
        return story_pb2.WriteStoryResponse(story=convert.story(written))

    async def WriteStories(
        self, request: story_pb2.WriteStoriesRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[story_pb2.WriteStoriesResponse]:
        seed = request.seed if request.HasField("seed") else None
        stories = self.storyteller.write_many(convert.options(request.options), request.count, seed)
        async for index, written in stories:
            yield story_pb2.WriteStoriesResponse(index=index, story=convert.story(written))

    async def ListPools(
        self, request: story_pb2.ListPoolsRequest, context: grpc.aio.ServicerContext
    ) -> story_pb2.ListPoolsResponse:
        pools = self.storyteller.pools
        return story_pb2.ListPoolsResponse(
            pools=[convert.pool_info(p) for p in pools], default_pool=pools.default
        )

    async def ListModes(
        self, request: story_pb2.ListModesRequest, context: grpc.aio.ServicerContext
    ) -> story_pb2.ListModesResponse:
        return story_pb2.ListModesResponse(modes=[convert.mode_info(p) for p in self.storyteller.modes()])

    async def ListEngines(
        self, request: story_pb2.ListEnginesRequest, context: grpc.aio.ServicerContext
    ) -> story_pb2.ListEnginesResponse:
        engines = self.storyteller.engines
        states = await asyncio.gather(*(engine.ready() for engine in engines.values()))
        return story_pb2.ListEnginesResponse(
            engines=[
                story_pb2.EngineInfo(
                    name=name,
                    ref=common_pb2.EngineRef(kind=engine.kind, endpoint=engine.endpoint, model=engine.model),
                    ready=ready,
                    detail=detail,
                )
                for (name, engine), (ready, detail) in zip(engines.items(), states, strict=True)
            ],
            default_engine=self.storyteller.default_engine,
        )
