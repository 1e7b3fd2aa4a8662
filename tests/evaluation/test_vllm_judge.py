"""The OpenAI-compatible judge path against a real vLLM CPU server serving a tiny RANDOM-weight VLM.

Random weights: answers mean nothing; these tests check transport, image delivery, log-probabilities,
concurrency and honest statuses, never quality.
"""

import asyncio
import json

import grpc
import pytest
from storytelling.evaluation.alignment import AlignmentEvaluator, ControlPoint
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.judge import Judge
from storytelling.evaluation.keypoints import KeyPointExtractor, KeyPointText
from storytelling.evaluation.tiny_vlm import IMAGE_SEQ_LEN
from storytelling.llm import ChatMessage, SamplingParams, TextPart
from storytelling.llm.openai import OpenAIChatEngine
from storytelling.runtime.testing import service_process
from storytelling.v1 import common_pb2, evaluation_pb2, evaluation_pb2_grpc

from tests.engines.vllm import SERVED_MODEL as SMOLLM2
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine, encoded

pytestmark = pytest.mark.slow
MODEL = "tiny-vlm-random"


class CountingEngine(OpenAIChatEngine):
    """Records how many judge requests were in flight at once."""

    in_flight = peak = 0

    async def chat(self, messages, params):
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await super().chat(messages, params)
        finally:
            self.in_flight -= 1


async def test_vllm_answers_about_the_image_with_logprobs(vllm_vlm, image) -> None:
    engine = OpenAIChatEngine(vllm_vlm.base_url, MODEL)
    assert await engine.ready() == (True, "")
    question = ChatMessage("user", (image.part(), TextPart("Is there a boy?")))
    completion = await engine.chat([question], SamplingParams(temperature=0.0, max_tokens=3, top_logprobs=20))
    assert completion.prompt_tokens > IMAGE_SEQ_LEN  # the image's tokens reached the model
    assert completion.completion_tokens == len(completion.logprobs) >= 1
    assert len(completion.logprobs[0].top) == 20
    verdict = await Judge(engine).judge(image, "There is a boy holding a box of cookies.")
    assert 0.0 <= verdict.score <= 1.0 and verdict.answer == verdict.answer.strip()
    await engine.aclose()


async def test_judge_requests_for_one_image_are_sent_concurrently(vllm_vlm, image) -> None:
    engine = CountingEngine(vllm_vlm.base_url, MODEL, max_concurrency=16)
    evaluator = AlignmentEvaluator(
        KeyPointExtractor(RecordedChatEngine([recorded.KEY_POINTS_GOOD])), Judge(engine)
    )
    extraction = await evaluator.extract("A story.")
    controls = [ControlPoint(KeyPointText(Dimension.EVENT, "A referee is slipping on confetti."), "other")]
    report = await evaluator.evaluate(image, extraction, controls)
    assert len(report.key_points) == 8 and engine.peak == 8
    assert report.false_yes_rate in (0.0, 1.0)
    await engine.aclose()


def _call(address: str, method: str, request):
    with grpc.insecure_channel(address) as channel:
        return getattr(evaluation_pb2_grpc.EvaluationServiceStub(channel), method)(request, timeout=300)


async def test_service_process_reports_failures_of_a_random_judge_honestly(vllm_vlm) -> None:
    """`python -m storytelling.evaluation` with vLLM as extractor and judge: the random model writes no
    JSON, so alignment and complexity are FAILED with the reason, never a number."""
    spec = {"kind": "openai", "model": MODEL, "base_url": vllm_vlm.base_url}
    env = {
        "STORYTELLING_EVALUATION_JUDGES": json.dumps({"vllm": spec}),
        "STORYTELLING_EVALUATION_EXTRACTORS": json.dumps({"vllm": spec}),
    }
    with service_process("storytelling.evaluation", env=env, ready_timeout=180) as proc:
        listed = await asyncio.to_thread(
            _call, proc.address, "ListEvaluators", evaluation_pb2.ListEvaluatorsRequest()
        )
        states = {e.evaluator: e.status for e in listed.evaluators}
        assert states[evaluation_pb2.EVALUATOR_ALIGNMENT].state == common_pb2.EvaluatorStatus.STATE_OK
        assert vllm_vlm.base_url in states[evaluation_pb2.EVALUATOR_COMPLEXITY].engine
        image = common_pb2.Image(data=encoded("JPEG"), format=common_pb2.IMAGE_FORMAT_JPEG)
        complexity = await asyncio.to_thread(
            _call, proc.address, "Complexity", evaluation_pb2.ComplexityRequest(image=image)
        )
        assert complexity.status.state == common_pb2.EvaluatorStatus.STATE_FAILED
        assert (
            "no parseable clue list after 2 attempts" in complexity.status.reason and complexity.score == 0.0
        )
        item = evaluation_pb2.EvaluationItem(story="A boy steals cookies from a jar.", image=image)
        alignment = await asyncio.to_thread(
            _call, proc.address, "Alignment", evaluation_pb2.AlignmentRequest(item=item)
        )
        assert alignment.status.state == common_pb2.EvaluatorStatus.STATE_FAILED
        assert "key-point extraction failed after 2 attempts" in alignment.status.reason
        assert not alignment.key_points


async def test_structured_extractor_lets_the_service_measure_the_judges_false_yes_rate(
    vllm_server, vllm_vlm
) -> None:
    """SmolLM2-135M on vLLM, its decoding constrained to the key-point schema, writes key points the
    service accepts, for the item's story and for the control stories drawn from the pool, so the
    tiny VLM judges both and the false-yes rate is measured, not "not measured"."""
    # Two extractions (the story's, one control story's) at about 13 tokens/s on two busy cores.
    extractor = {"kind": "openai", "model": SMOLLM2, "base_url": vllm_server.base_url, "timeout_s": 600}
    judge = {"kind": "openai", "model": MODEL, "base_url": vllm_vlm.base_url}
    env = {
        "STORYTELLING_EVALUATION_EXTRACTORS": json.dumps({"smollm2": extractor}),
        "STORYTELLING_EVALUATION_JUDGES": json.dumps({"vlm": judge}),
        "STORYTELLING_EVALUATION_EXTRACTOR_OUTPUT": "json_schema",
        "STORYTELLING_EVALUATION_TEXT_MEASURES": "false",
    }
    item = evaluation_pb2.EvaluationItem(
        id="tray",
        story="In a school cafeteria a waiter trips over a backpack and drops his tray, and spaghetti "
        "lands on a girl's new white shoes while her friends laugh.",
        image=common_pb2.Image(data=encoded("PNG"), format=common_pb2.IMAGE_FORMAT_PNG),
    )
    request = evaluation_pb2.AlignmentRequest(
        item=item, options=evaluation_pb2.AlignmentOptions(num_controls=1)
    )
    with service_process("storytelling.evaluation", env=env, ready_timeout=180) as proc:
        result = await asyncio.to_thread(_call, proc.address, "Alignment", request)
    assert result.status.state == common_pb2.EvaluatorStatus.STATE_OK, result.status.reason
    assert result.provenance.extractor_prompt_version == "keypoints/1+key_points_v1"
    own = [k for k in result.key_points if not k.is_control]
    controls = [k for k in result.key_points if k.is_control]
    assert own and all(k.text[0].isupper() and k.text.endswith((".", "!")) for k in own)
    assert len(controls) == 1 and all(k.source_story_id and k.answer for k in controls)
    assert {k.text for k in controls}.isdisjoint(k.text for k in own)
    assert result.HasField("false_yes_rate") and 0.0 <= result.false_yes_rate <= 1.0
    assert result.false_yes_rate == pytest.approx(sum(k.score > 0.5 for k in controls) / len(controls))
