"""gRPC adapter: protobuf request -> core call -> protobuf response. No evaluation logic here."""

from collections.abc import AsyncIterator

from storytelling.evaluation import convert
from storytelling.evaluation.core import ITEM_KINDS, Evaluation, Kind
from storytelling.evaluation.metrics import EvaluationMetrics
from storytelling.runtime.errors import InvalidArgument
from storytelling.v1 import evaluation_pb2, evaluation_pb2_grpc

DESCRIPTIONS = {
    Kind.DIVERSITY: "KNN diversity and Vendi score of a set of stories over sentence embeddings",
    Kind.ALIGNMENT: "story-image alignment: LLM key points judged yes/no by a VLM, with control key points",
    Kind.COMPLEXITY: "semantic complexity: VLM clues and inferences in the seven dimensions, rule-scored",
    Kind.TEXT_MEASURES: "offline text-side measures of the story (spaCy + embedder); not an image evaluator",
    Kind.NOVELTY: "novelty against the story's exemplars and the story pool, and memorisation of the pool",
}


class EvaluationServicer(evaluation_pb2_grpc.EvaluationServiceServicer):
    def __init__(
        self, core: Evaluation, max_image_pixels: int, metrics: EvaluationMetrics | None = None
    ) -> None:
        self.core = core
        self.max_pixels = max_image_pixels
        self.metrics = metrics

    def _options(self, message: evaluation_pb2.AlignmentOptions, field: str):
        return convert.alignment_options(
            message, field, list(self.core.extractors), list(self.core.judges), self.core.pools
        )

    async def EvaluateItem(self, request, context) -> evaluation_pb2.EvaluateItemResponse:
        kinds = convert.kinds(request.evaluators, "evaluators", ITEM_KINDS)
        item = convert.item(
            request.item,
            "item",
            self.core.pools,
            self.max_pixels,
            needs_story=set(kinds) != {Kind.COMPLEXITY},
        )
        options = self._options(request.alignment, "alignment")
        result = await self.core.evaluate_item(item, kinds, options)
        evaluation = convert.item_result(result, self.core.embedder.name)
        if self.metrics is not None:
            self.metrics.item(evaluation)
        return evaluation_pb2.EvaluateItemResponse(evaluation=evaluation)

    async def EvaluateSet(self, request, context) -> AsyncIterator[evaluation_pb2.EvaluateSetEvent]:
        """Items as they complete, then the summary computed from them as sent (as SummarizeSet would)."""
        kinds = convert.kinds(request.evaluators, "evaluators", (Kind.DIVERSITY, *ITEM_KINDS))
        items = convert.set_items(request.items, kinds, self.core.pools, self.max_pixels)
        options = self._options(request.alignment, "alignment")
        k = self._diversity_options(request.diversity, "diversity")
        reference = convert.stories(request.diversity.reference, "diversity.reference")
        stories = {item.id: item.story for item in items}
        members = []
        async for result in self.core.evaluate_set(items, kinds, options):
            evaluation = convert.item_result(result, self.core.embedder.name)
            if self.metrics is not None:
                self.metrics.item(evaluation)
            members.append(convert.member(result.item_id, stories[result.item_id], evaluation))
            yield evaluation_pb2.EvaluateSetEvent(item=evaluation)
        order = {item.id: n for n, item in enumerate(items)}
        members.sort(key=lambda m: order[m.item_id])
        summary = await self.core.summarize(
            members, diversity=Kind.DIVERSITY in kinds, k=k, reference=reference
        )
        message = convert.summary(summary, self.core.embedder.name)
        if self.metrics is not None and message.HasField("diversity"):
            self.metrics.diversity(message.diversity)
        yield evaluation_pb2.EvaluateSetEvent(summary=message)

    async def SummarizeSet(self, request, context) -> evaluation_pb2.SetSummary:
        members = convert.members(request.items)
        k = self._diversity_options(request.diversity, "diversity")
        reference = convert.stories(request.diversity.reference, "diversity.reference")
        summary = await self.core.summarize(
            members, diversity=not request.skip_diversity, k=k, reference=reference
        )
        message = convert.summary(summary, self.core.embedder.name)
        if self.metrics is not None and message.HasField("diversity"):
            self.metrics.diversity(message.diversity)  # a job's set diversity reaches the dashboards here
        return message

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
        item = convert.item(request.item, "item", self.core.pools, self.max_pixels)
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
