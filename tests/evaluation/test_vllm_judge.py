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
