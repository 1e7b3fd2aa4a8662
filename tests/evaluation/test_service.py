"""The gRPC service in-process (full runtime handler chain): results, honest statuses, bad input."""

import json

import grpc
import pytest

from storytelling.evaluation.core import Evaluation
from storytelling.evaluation.lexical import distinct_n, repetition
from storytelling.evaluation.service import EvaluationService
from storytelling.evaluation.settings import EvaluationSettings
from storytelling.llm import EngineSpec
from storytelling.evaluation.text_measures import TextMeasurer
from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.api.pools import builtin_pools
from storytelling.runtime.testing import free_port, running_service
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine, encoded
from tests.evaluation.test_diversity_sets import DISTINCT

OK = common_pb2.EvaluatorStatus.STATE_OK
NOT_RUN = common_pb2.EvaluatorStatus.STATE_NOT_RUN
FAILED = common_pb2.EvaluatorStatus.STATE_FAILED
PNG = common_pb2.Image(data=encoded("PNG"), format=common_pb2.IMAGE_FORMAT_PNG)


@pytest.fixture(scope="module")
def text(embedder) -> TextMeasurer:
    measurer = TextMeasurer(embedder)
    measurer.load()
    return measurer


@pytest.fixture
async def stub(embedder, text):
    async with running_service(EvaluationService(Evaluation(embedder, text))) as channel:
        yield evaluation_pb2_grpc.EvaluationServiceStub(channel)


def items(n: int, image: common_pb2.Image | None = PNG) -> list[evaluation_pb2.EvaluationItem]:
    return [evaluation_pb2.EvaluationItem(id=f"it-{i}", story=DISTINCT[i], image=image) for i in range(n)]


async def test_evaluators_without_an_engine_say_so(stub) -> None:
    listed = {
        e.evaluator: e.status
        for e in (await stub.ListEvaluators(evaluation_pb2.ListEvaluatorsRequest())).evaluators
    }
    assert listed[evaluation_pb2.EVALUATOR_DIVERSITY].state == OK
    assert listed[evaluation_pb2.EVALUATOR_TEXT_MEASURES].state == OK
    assert listed[evaluation_pb2.EVALUATOR_ALIGNMENT].state == NOT_RUN
    assert "no key-point extractor LLM configured" in listed[evaluation_pb2.EVALUATOR_ALIGNMENT].reason
    assert listed[evaluation_pb2.EVALUATOR_COMPLEXITY].reason == "no VLM judge configured"

    reply = await stub.EvaluateItem(evaluation_pb2.EvaluateItemRequest(item=items(1)[0]))
    evaluation = reply.evaluation
    assert evaluation.alignment.status.state == NOT_RUN and evaluation.complexity.status.state == NOT_RUN
    assert not evaluation.alignment.key_points and evaluation.alignment.score == 0.0
    assert evaluation.text_measures.status.state == OK and evaluation.text_measures.words > 10


async def test_an_unreachable_judge_means_not_run(embedder, text) -> None:
    judge = OpenAIChatEngine(f"http://127.0.0.1:{free_port()}/v1", "absent-vlm", max_retries=0)
    extractor = RecordedChatEngine([recorded.KEY_POINTS_GOOD])
    core = Evaluation(embedder, text, extractors={"recorded": extractor}, judges={"down": judge})
    async with running_service(EvaluationService(core)) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        listed = await stub.ListEvaluators(evaluation_pb2.ListEvaluatorsRequest())
        complexity = await stub.Complexity(evaluation_pb2.ComplexityRequest(image=PNG))
        alignment = await stub.Alignment(evaluation_pb2.AlignmentRequest(item=items(1)[0]))
    statuses = {e.evaluator: e.status for e in listed.evaluators}
    for kind in (evaluation_pb2.EVALUATOR_ALIGNMENT, evaluation_pb2.EVALUATOR_COMPLEXITY):
        assert statuses[kind].state == NOT_RUN and "is unreachable" in statuses[kind].reason
    for result in (complexity, alignment):
        assert result.status.state == NOT_RUN and "VLM judge openai:absent-vlm@" in result.status.reason
        assert result.score == 0.0


def test_structured_extraction_is_refused_at_startup_for_engines_that_cannot_constrain() -> None:
    extractors = {"local": EngineSpec(kind="embedded"), "vllm": EngineSpec(kind="openai", model="m")}
    with pytest.raises(ValueError, match="json_schema needs openai engines; local cannot"):
        EvaluationSettings(extractors=extractors, extractor_output="json_schema")
    assert EvaluationSettings(extractors=extractors).extractor_output == "parsed"


async def test_diversity_rpc(stub) -> None:
    request = evaluation_pb2.DiversityRequest(stories=DISTINCT, options=evaluation_pb2.DiversityOptions(k=10))
    result = await stub.Diversity(request)
    assert result.status.state == OK and result.k == 3 and result.search == "exact"
    assert len(result.per_story) == 4 and 1.0 <= result.vendi_score <= 4.0
    assert not result.HasField("novelty") and result.embedder == "all-MiniLM-L6-v2"
    request.options.reference.append(DISTINCT[0])
    result = await stub.Diversity(request)
    assert result.HasField("novelty") and result.per_story_novelty[0] == pytest.approx(0.0, abs=1e-5)
    assert result.distinct_2 == pytest.approx(distinct_n(DISTINCT, 2))
    copies = await stub.Diversity(evaluation_pb2.DiversityRequest(stories=[DISTINCT[0]] * 2))
    assert copies.distinct_2 == pytest.approx(distinct_n(DISTINCT[:1], 2) / 2)


async def test_text_measures_report_repetition(stub) -> None:
    written = await stub.TextMeasures(evaluation_pb2.TextMeasuresRequest(story=DISTINCT[0]))
    looping = await stub.TextMeasures(evaluation_pb2.TextMeasuresRequest(story="Invent a story that. " * 12))
    assert written.repetition == pytest.approx(repetition(DISTINCT[0])) and written.repetition < 0.05
    assert looping.repetition > 0.8


async def test_evaluate_set_streams_items_then_summary(stub) -> None:
    request = evaluation_pb2.EvaluateSetRequest(items=items(4, image=None))
    events = [event async for event in stub.EvaluateSet(request)]
    assert [e.WhichOneof("event") for e in events] == ["item"] * 4 + ["summary"]
    assert sorted(e.item.item_id for e in events[:4]) == ["it-0", "it-1", "it-2", "it-3"]
    summary = events[-1].summary
    assert (
        summary.items == 4 and summary.diversity.status.state == OK and len(summary.diversity.per_story) == 4
    )
    assert summary.alignment_status.state == NOT_RUN
    assert summary.alignment_status.reason == "the item has no image (4 items)"
    assert (summary.alignment_counts.ok, summary.alignment_counts.not_run) == (0, 4)
    assert not summary.HasField("mean_alignment") and not summary.HasField("mean_false_yes_rate")
    assert summary.text_measures_counts.ok == 4 and summary.HasField("mean_dimensions_covered")
    assert summary.novelty_counts.ok == 4 and summary.novelty.pool == "storytelling_v1"

    # The same items, stored and summarised later (as a job does), give the identical summary; items
    # that were never evaluated are counted apart, with their reason.
    evaluations = {e.item.item_id: e.item for e in events[:4]}
    members = [
        evaluation_pb2.SetMember(item_id=i.id, story=i.story, evaluation=evaluations[i.id])
        for i in request.items
    ]
    again = await stub.SummarizeSet(evaluation_pb2.SummarizeSetRequest(items=members))
    assert numbers(again) == numbers(summary)
    lost = evaluation_pb2.SetMember(item_id="it-9", not_evaluated_reason="render failed after 6 attempts")
    with_lost = await stub.SummarizeSet(evaluation_pb2.SummarizeSetRequest(items=[*members, lost]))
    assert with_lost.items == 5 and with_lost.items_not_evaluated == 1
    assert with_lost.not_evaluated_reasons[0].reason == "render failed after 6 attempts"
    assert numbers(with_lost).diversity == numbers(summary).diversity  # the lost item has no story
    assert with_lost.alignment_counts == summary.alignment_counts


def numbers(summary: evaluation_pb2.SetSummary) -> evaluation_pb2.SetSummary:
    """The summary without the wall time of its diversity run, the one field two runs never share."""
    copy = evaluation_pb2.SetSummary()
    copy.CopyFrom(summary)
    copy.diversity.status.ClearField("seconds")
    return copy


def pool_key_points() -> dict[str, str]:
    """Recorded extractor outputs for the test split of the shipped pool: one event per story."""
    test_split = builtin_pools()[0].candidates("test")
    return {
        entry.story: json.dumps({"event": [f"A lighthouse keeper from story {entry.id} feeds the gulls."]})
        for entry in test_split
    }


async def test_alignment_through_the_service_with_a_tiny_random_vlm(embedder, text, tiny_vlm) -> None:
    """RANDOM-weight embedded judge; extractor outputs are recorded. Checks plumbing and what is kept."""
    core = Evaluation(
        embedder,
        text,
        extractors={
            "recorded": RecordedChatEngine(
                [recorded.KEY_POINTS_TRUNCATED],
                by_story={
                    DISTINCT[0]: recorded.KEY_POINTS_GOOD,
                    DISTINCT[1]: recorded.KEY_POINTS_OTHER,
                    **pool_key_points(),
                },
            )
        },
        judges={"tiny": EmbeddedChatEngine(tiny_vlm)},
        top_logprobs=5,
    )
    async with running_service(EvaluationService(core)) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        request = evaluation_pb2.EvaluateSetRequest(
            items=items(2),
            evaluators=[evaluation_pb2.EVALUATOR_ALIGNMENT],
            alignment=evaluation_pb2.AlignmentOptions(num_controls=2),
        )
        events = [event async for event in stub.EvaluateSet(request)]
        # Controls from the caller's stories, one key point each; an unreadable one just adds none.
        single = await stub.Alignment(
            evaluation_pb2.AlignmentRequest(
                item=items(1)[0],
                options=evaluation_pb2.AlignmentOptions(control_stories=[DISTINCT[1], "Unreadable story."]),
            )
        )
    assert single.status.state == OK, single.status.reason
    assert [kp.source_story_id for kp in single.key_points if kp.is_control] == ["control-0"]
    assert single.HasField("false_yes_rate") and single.provenance.control_pool == ""
    results = {event.item.item_id: event.item.alignment for event in events[:2]}
    test_ids = {entry.id for entry in builtin_pools()[0].candidates("test")}
    drawn = {}
    for item_id, own_count, raw in (
        ("it-0", 7, recorded.KEY_POINTS_GOOD),
        ("it-1", 4, recorded.KEY_POINTS_OTHER),
    ):
        result = results[item_id]
        assert result.status.state == OK, result.status.reason
        assert "judge=embedded:" in result.status.engine
        own = [kp for kp in result.key_points if not kp.is_control]
        controls = [kp for kp in result.key_points if kp.is_control]
        assert len(own) == own_count and all(kp.question and kp.answer for kp in result.key_points)
        # Each item's own controls: two stories of the pool's test split, one key point each.
        assert len(controls) == 2 and {kp.source_story_id for kp in controls} <= test_ids
        assert all(f"from story {kp.source_story_id} " in kp.text for kp in controls)
        drawn[item_id] = [kp.text for kp in controls]
        provenance = result.provenance
        assert (provenance.control_pool, provenance.control_seed) == ("storytelling_v1", 0)
        assert (provenance.extractor_prompt_version, provenance.prompt_version) == ("keypoints/1", "judge/1")
        assert provenance.extractor.model == "recorded-outputs" and provenance.judge.kind == "embedded"
        assert provenance.judge_sampling.temperature == 0 and provenance.judge_sampling.max_tokens == 4
        share_yes = sum(kp.score > 0.5 for kp in controls) / 2
        assert result.false_yes_rate == pytest.approx(share_yes)
        assert result.extraction_raw == raw
        assert result.score == pytest.approx(sum(kp.score for kp in own) / own_count, abs=1e-6)
    assert drawn["it-0"] != drawn["it-1"]  # seeded by item id
    summary = events[-1].summary
    assert summary.alignment_status.state == OK and not summary.HasField("diversity")
    assert summary.false_yes_items == 2 and summary.HasField("mean_false_yes_rate")


GIF = common_pb2.Image(data=encoded("GIF"))
BAD_REQUESTS = [
    (
        "Diversity",
        evaluation_pb2.DiversityRequest(stories=["one story"]),
        "stories: diversity needs at least 2",
    ),
    (
        "Diversity",
        evaluation_pb2.DiversityRequest(stories=["a", " "]),
        "stories[1]: must be a non-empty story",
    ),
    (
        "Diversity",
        evaluation_pb2.DiversityRequest(stories=["a", "b"], options=evaluation_pb2.DiversityOptions(k=-1)),
        "options.k: k must be >= 1",
    ),
    (
        "Diversity",
        evaluation_pb2.DiversityRequest(
            stories=["a", "b"], options=evaluation_pb2.DiversityOptions(embedder="x")
        ),
        "options.embedder: unknown embedder",
    ),
    ("TextMeasures", evaluation_pb2.TextMeasuresRequest(story=""), "story: must be a non-empty story"),
    ("Complexity", evaluation_pb2.ComplexityRequest(), "image: complexity needs an image"),
    (
        "Complexity",
        evaluation_pb2.ComplexityRequest(image=common_pb2.Image(data=b"not an image")),
        "image.data: the bytes are not a decodable image",
    ),
    ("Complexity", evaluation_pb2.ComplexityRequest(image=GIF), "image.data: unsupported image format GIF"),
    (
        "Complexity",
        evaluation_pb2.ComplexityRequest(image=common_pb2.Image(data=b"x", format=9)),
        "image.format",
    ),
    (
        "Alignment",
        evaluation_pb2.AlignmentRequest(item=evaluation_pb2.EvaluationItem(story="", image=PNG)),
        "item.story: must be a non-empty story",
    ),
    (
        "Alignment",
        evaluation_pb2.AlignmentRequest(
            item=evaluation_pb2.EvaluationItem(
                story="s", image=common_pb2.Image(data=encoded("PNG"), format=common_pb2.IMAGE_FORMAT_JPEG)
            )
        ),
        "item.image.data: declared JPEG but the bytes are PNG",
    ),
    (
        "Alignment",
        evaluation_pb2.AlignmentRequest(
            item=evaluation_pb2.EvaluationItem(story="s", image=PNG),
            options=evaluation_pb2.AlignmentOptions(judge="gpt"),
        ),
        "options.judge: unknown engine 'gpt'",
    ),
    (
        "EvaluateItem",
        evaluation_pb2.EvaluateItemRequest(
            item=evaluation_pb2.EvaluationItem(story="s"), evaluators=[evaluation_pb2.EVALUATOR_DIVERSITY]
        ),
        "evaluators[0]: diversity is not evaluated per item",
    ),
]
BAD_SETS = [
    (evaluation_pb2.EvaluateSetRequest(items=items(1)), "items: diversity needs a set of at least 2 stories"),
    (evaluation_pb2.EvaluateSetRequest(), "items: must hold at least one item"),
    (
        evaluation_pb2.EvaluateSetRequest(items=[*items(1), *items(2, image=None)[1:]]),
        "items[1].image: 1 images for 2 stories",
    ),
    (
        evaluation_pb2.EvaluateSetRequest(items=items(2), diversity=evaluation_pb2.DiversityOptions(k=-3)),
        "diversity.k: k must be >= 1",
    ),
    (
        evaluation_pb2.EvaluateSetRequest(
            items=items(2), alignment=evaluation_pb2.AlignmentOptions(num_controls=-2)
        ),
        "alignment.num_controls",
    ),
    (
        evaluation_pb2.EvaluateSetRequest(items=[*items(1), *items(1)]),
        "items[1].id: duplicate item id 'it-0'",
    ),
]


@pytest.mark.parametrize("method, request_, details", BAD_REQUESTS)
async def test_bad_input_names_the_field(stub, method: str, request_, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await getattr(stub, method)(request_)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(details), caught.value.details()


@pytest.mark.parametrize("request_, details", BAD_SETS)
async def test_bad_sets_name_the_field(stub, request_, details: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        [event async for event in stub.EvaluateSet(request_)]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(details), caught.value.details()


async def test_results_are_counted_in_the_services_metrics(embedder, text) -> None:
    """Scores of results that ran, and every state, reach the Prometheus registry (the dashboards' data)."""
    async with running_service(EvaluationService(Evaluation(embedder, text))) as channel:
        stub = evaluation_pb2_grpc.EvaluationServiceStub(channel)
        for item in items(2):
            await stub.EvaluateItem(evaluation_pb2.EvaluateItemRequest(item=item))
        await stub.Diversity(evaluation_pb2.DiversityRequest(stories=DISTINCT))
        registry = channel.server.registry

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    assert sample("storytelling_evaluation_results_total", evaluator="alignment", state="not_run") == 2
    assert sample("storytelling_evaluation_results_total", evaluator="complexity", state="not_run") == 2
    assert sample("storytelling_evaluation_results_total", evaluator="text_measures", state="ok") == 2
    assert sample("storytelling_evaluation_score_count", evaluator="text_measures") == 2
    assert sample("storytelling_evaluation_score_count", evaluator="alignment") == 0, "no score when not run"
    assert sample("storytelling_evaluation_results_total", evaluator="diversity", state="ok") == 1
    assert 0 < sample("storytelling_evaluation_score_sum", evaluator="diversity") <= 1
