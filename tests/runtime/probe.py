"""A minimal service on the shared runtime, for testing and benchmarking the runtime itself.

It serves StoryService's contract with no engine: ListModes is the trivial RPC, WriteStory sleeps
`seed` milliseconds (an RPC that stays in flight on demand; a negative seed raises) and WriteStories
streams `count` stories. A failing WriteStory repeats the request's theme in its error, as careless code
might repeat a request field (the log redaction test relies on it).
"""

from __future__ import annotations

import asyncio
import json

import grpc

from storytelling.runtime import deadlines
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.errors import InvalidArgument
from storytelling.runtime.server import main
from storytelling.runtime.service import Service
from storytelling.v1 import common_pb2, story_pb2, story_pb2_grpc

MODES = story_pb2.ListModesResponse(
    modes=[story_pb2.ModeInfo(mode=common_pb2.STORY_MODE_NAIVE, prompt_version="probe/1")]
)


class ProbeSettings(ServiceSettings):
    model_config = ServiceSettings.env("PROBE")
    start_delay_s: float = 0.0


class ProbeServicer(story_pb2_grpc.StoryServiceServicer):
    async def ListModes(self, request, context):
        return MODES

    async def WriteStory(self, request, context):
        if request.options.num_exemplars < 0:
            raise InvalidArgument("must be >= 0", field="options.num_exemplars")
        if request.seed < 0:
            raise RuntimeError(f"probe asked to fail (theme {request.options.theme!r})")
        await asyncio.sleep(request.seed / 1000)
        report = {"slept_ms": request.seed, "deadline_s": deadlines.remaining()}
        return story_pb2.WriteStoryResponse(story=common_pb2.Story(id="probe", text=json.dumps(report)))

    async def WriteStories(self, request, context):
        if request.count < 1:
            raise InvalidArgument(f"must be >= 1, got {request.count}", field="count")
        for index in range(request.count):
            await asyncio.sleep(0)
            yield story_pb2.WriteStoriesResponse(index=index, story=common_pb2.Story(id=str(index)))


class ProbeService(Service):
    name = "probe"

    def __init__(self, settings: ProbeSettings) -> None:
        self.settings = settings
        self.started = False

    @classmethod
    def from_settings(cls, settings: ProbeSettings) -> ProbeService:
        return cls(settings)

    def register(self, server: grpc.aio.Server) -> list[str]:
        story_pb2_grpc.add_StoryServiceServicer_to_server(ProbeServicer(), server)
        return [story_pb2.DESCRIPTOR.services_by_name["StoryService"].full_name]

    async def start(self) -> None:
        await asyncio.sleep(self.settings.start_delay_s)
        self.started = True

    async def ready(self) -> tuple[bool, str]:
        return self.started, "" if self.started else "engine loading"


if __name__ == "__main__":
    main(ProbeService.from_settings, ProbeSettings)
