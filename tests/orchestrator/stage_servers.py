"""The in-process stages of stages.py served as StoryService, RenderService and EvaluationService on one
runtime server, so that the orchestrator's gRPC clients and the orchestrator process can be tested."""

from collections.abc import AsyncIterator, Callable, Collection

import grpc

from storytelling.orchestrator.seeds import derive_seed
from storytelling.orchestrator.stages import Stages
from storytelling.runtime.service import Service
from storytelling.v1 import (
    evaluation_pb2,
    evaluation_pb2_grpc,
    render_pb2,
    render_pb2_grpc,
    story_pb2,
    story_pb2_grpc,
)


def story_indexes(job_seed: int, items: int) -> dict[int, int]:
    """Item index by story seed: WriteStory requests carry the seed, not the orchestrator's index."""
    return {derive_seed(job_seed, index, "story"): index for index in range(items)}


class _Story(story_pb2_grpc.StoryServiceServicer):
    def __init__(self, stages: Stages, index_of_seed: Callable[[int], int]):
        self._stage, self._index_of_seed = stages.story, index_of_seed

    async def WriteStory(self, request, context):
        story = await self._stage.write(request.options, self._index_of_seed(request.seed), request.seed)
        return story_pb2.WriteStoryResponse(story=story)

    async def ListEngines(self, request, context):
        engines = [story_pb2.EngineInfo(name=name, ready=True) for name in self._stage.engines]
        return story_pb2.ListEnginesResponse(engines=engines, default_engine=self._stage.engines[0])


class _Render(render_pb2_grpc.RenderServiceServicer):
    def __init__(self, stages: Stages):
        self._stage = stages.render

    async def RenderStream(self, request, context) -> AsyncIterator[render_pb2.RenderEvent]:
        steps: list[tuple[int, int]] = []
        image = await self._stage.render(request, lambda step, total: steps.append((step, total)))
        for step, total in steps:
            yield render_pb2.RenderEvent(progress=render_pb2.RenderProgress(step=step, total_steps=total))
        yield render_pb2.RenderEvent(result=render_pb2.RenderResponse(image=image))

    async def ListPainters(self, request, context):
        painters = [render_pb2.PainterInfo(name=name, ready=True) for name in self._stage.painters]
        return render_pb2.ListPaintersResponse(painters=painters, default_painter=self._stage.painters[0])


class _Evaluation(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(self, stages: Stages):
        self._stage = stages.evaluate

    async def EvaluateItem(self, request, context):
        return evaluation_pb2.EvaluateItemResponse(evaluation=await self._stage.evaluate(request))

    async def SummarizeSet(self, request, context):
        return await self._stage.summarize(request)


class LocalStageServices(Service):
    name = "local-stages"

    def __init__(
        self,
        stages: Stages,
        index_of_seed: Callable[[int], int],
        serve: Collection[str] = ("story", "render", "evaluation"),
    ):
        self.stages, self._index_of_seed, self._serve = stages, index_of_seed, serve

    def register(self, server: grpc.aio.Server) -> list[str]:
        names = []
        if "story" in self._serve:
            story_pb2_grpc.add_StoryServiceServicer_to_server(
                _Story(self.stages, self._index_of_seed), server
            )
            names.append(story_pb2.DESCRIPTOR.services_by_name["StoryService"].full_name)
        if "render" in self._serve:
            render_pb2_grpc.add_RenderServiceServicer_to_server(_Render(self.stages), server)
            names.append(render_pb2.DESCRIPTOR.services_by_name["RenderService"].full_name)
        if "evaluation" in self._serve:
            evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server(_Evaluation(self.stages), server)
            names.append(evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name)
        return names
