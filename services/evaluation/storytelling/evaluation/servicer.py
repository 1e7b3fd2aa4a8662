"""gRPC adapter: protobuf request -> core call -> protobuf response. No evaluation logic here."""

from collections.abc import AsyncIterator

from storytelling.evaluation import convert
from storytelling.evaluation.core import ITEM_KINDS, Evaluation, ItemResult, Kind
from storytelling.evaluation.metrics import EvaluationMetrics
from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import evaluation_pb2, evaluation_pb2_grpc

DESCRIPTIONS = {
    Kind.DIVERSITY: "KNN diversity, novelty and Vendi score of a set of stories over sentence embeddings",
    Kind.ALIGNMENT: "story-image alignment: LLM key points judged yes/no by a VLM, with control key points",
    Kind.COMPLEXITY: "semantic complexity: VLM clues and inferences in the seven dimensions, rule-scored",
    Kind.TEXT_MEASURES: "offline text-side measures of the story (spaCy + embedder); not an image evaluator",
}


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(
        self, core: Evaluation, max_image_pixels: int, metrics: EvaluationMetrics | None = None
    ) -> None:
        self.core = core
        self.max_pixels = max_image_pixels
        self.metrics = metrics

    def _options(self, message: evaluation_pb2.AlignmentOptions, field: str):
        return convert.alignment_options(message, field, list(self.core.extractors), list(self.core.judges))

    async def EvaluateItem(self, request, context) -> evaluation_pb2.EvaluateItemResponse:
        kinds = convert.kinds(request.evaluators, "evaluators", ITEM_KINDS)
        item = convert.item(
            request.item, "item", self.max_pixels, needs_story=set(kinds) != {Kind.COMPLEXITY}
        )
        options = self._options(request.alignment, "alignment")
        result = convert.item_result(await self.core.evaluate_item(item, kinds, options))
        if self.metrics is not None:
            self.metrics.item(result)
        return evaluation_pb2.EvaluateItemResponse(evaluation=result)

    async def EvaluateSet(self, request, context) -> AsyncIterator[evaluation_pb2.EvaluateSetEvent]:
        kinds = convert.kinds(request.evaluators, "evaluators", (Kind.DIVERSITY, *ITEM_KINDS))
        items = convert.set_items(request.items, kinds, self.max_pixels)
        options = self._options(request.alignment, "alignment")
        k = self._diversity_options(request.diversity, "diversity")
        reference = convert.stories(request.diversity.reference, "diversity.reference")
        async for event in self.core.evaluate_set(items, kinds, options, k, reference):
            if isinstance(event, ItemResult):
                result = convert.item_result(event)
                if self.metrics is not None:
                    self.metrics.item(result)
                yield evaluation_pb2.EvaluateSetEvent(item=result)
            else:
                summary = convert.summary(event, self.core.embedder.name)
                if self.metrics is not None and summary.HasField("diversity"):
                    self.metrics.diversity(summary.diversity)
                yield evaluation_pb2.EvaluateSetEvent(summary=summary)

    async def Diversity(self, request, context) -> evaluation_pb2.DiversityResult:
        stories = convert.stories(request.stories, "stories")
        if len(stories) < 2:
            raise InvalidArgument(f"diversity needs at least 2 stories, got {len(stories)}", field="stories")
        k = self._diversity_options(request.options, "options")
        reference = convert.stories(request.options.reference, "options.reference")
        result = convert.diversity(await self.core.diversity(stories, k, reference), self.core.embedder.name)
        if self.metrics is not None:
            self.metrics.diversity(result)
        return result

    async def Alignment(self, request, context) -> evaluation_pb2.AlignmentResult:
        item = convert.item(request.item, "item", self.max_pixels)
        if item.image is None:
            raise InvalidArgument("alignment needs an image", field="item.image")
        result = convert.alignment(await self.core.alignment(item, self._options(request.options, "options")))
        if self.metrics is not None:
            self.metrics.alignment(result)
        return result

    async def Complexity(self, request, context) -> evaluation_pb2.ComplexityResult:
        if not request.HasField("image"):
            raise InvalidArgument("complexity needs an image", field="image")
        image = convert.image(request.image, "image", self.max_pixels)
        result = convert.complexity(await self.core.complexity(image))
        if self.metrics is not None:
            self.metrics.complexity(result)
        return result

    async def TextMeasures(self, request, context) -> evaluation_pb2.TextMeasuresResult:
        outcome = await self.core.text_measures(convert.story(request.story, "story"))
        return convert.text_measures(outcome)

    async def ListEvaluators(self, request, context) -> evaluation_pb2.ListEvaluatorsResponse:
        statuses = await self.core.statuses()
        return evaluation_pb2.ListEvaluatorsResponse(
            evaluators=[
                evaluation_pb2.EvaluatorInfo(
                    evaluator=convert.KIND_TO_PB[kind],
                    status=convert.status(s),
                    description=DESCRIPTIONS[kind],
                )
                for kind, s in statuses.items()
            ]
        )

    def _diversity_options(self, options: evaluation_pb2.DiversityOptions, field: str) -> int | None:
        if options.embedder and options.embedder != self.core.embedder.name:
            raise InvalidArgument(
                f"unknown embedder {options.embedder!r}; this service uses {self.core.embedder.name!r}",
                field=f"{field}.embedder",
            )
        return convert.k(options.k, f"{field}.k")
