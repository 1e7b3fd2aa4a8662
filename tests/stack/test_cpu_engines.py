"""The `cpu-engines` profile end to end: vLLM CPU serves SmolLM2-135M (storyteller, key-point extractor)
and the tiny random Idefics3 (judge), Triton CPU serves the tiny random painter, and a two-item job runs
through the real services with every evaluator live. The extractor's decoding is constrained to the
key-point schema, so each item's alignment has control key points from the pool and a measured false-yes
rate (issue 12: controls in a job with a judge on vLLM CPU). Judge and painter have RANDOM weights: the
test checks that every result says so, and never what the numbers are."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from storytelling.api.gallery import RANDOM_WEIGHTS_BADGE
from storytelling.client import Client, job_spec
from storytelling.stack.local import LocalStack, StackOptions
from storytelling.v1 import common_pb2, pipeline_pb2

# Two vLLM servers, Triton and four services start on two cores: minutes, more on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.own_engines, pytest.mark.timeout(1800)]
OK = common_pb2.EvaluatorStatus.STATE_OK


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    options = StackOptions(
        data_dir=tmp_path_factory.mktemp("cpu-engines"), profile="cpu-engines", ephemeral_ports=True
    )
    with LocalStack(options) as running:
        running.up()
        yield running


def test_a_job_on_cpu_engines_runs_every_evaluator_live(stack: LocalStack) -> None:
    assert {"triton", "vllm (storyteller: smollm2-135m)", "vllm (judge: tiny-idefics3-random)"} <= set(
        stack.endpoints()
    )
    with Client(stack.services["orchestrator"].address, timeout=60) as client:
        spec = job_spec(2, seed=11)
        spec.alignment.num_controls = 1  # each control story costs a constrained extraction (~15 s)
        job = client.create_job(spec)
        for _ in client.watch(job.id):
            pass
        job = client.get_job(job.id)
    assert job.state == pipeline_pb2.JOB_STATE_SUCCEEDED, job.error
    assert job.items_succeeded == 2, [item.error for item in job.items]
    for item in job.items:
        assert item.story.provenance.engine.model == "smollm2-135m"
        assert item.story.provenance.engine.endpoint == stack.engines.vllm_urls["storyteller"]
        painter = item.image.painter
        assert painter.kind == "triton" and painter.is_fallback and "random weights" in painter.note
        evaluation = item.evaluation
        alignment, complexity = evaluation.alignment, evaluation.complexity
        assert alignment.status.state == OK, alignment.status.reason
        assert complexity.status.state == OK, complexity.status.reason
        assert evaluation.text_measures.status.state == OK
        # Key points from the extractor (vLLM, schema-constrained), a verdict for each from the judge.
        own = [kp for kp in alignment.key_points if not kp.is_control]
        assert own and all(kp.question and kp.text.endswith(".") for kp in own)
        # Controls drawn from the pool's stories, extracted the same way: the false-yes rate is measured.
        controls = [kp for kp in alignment.key_points if kp.is_control]
        assert controls and all(kp.source_story_id and kp.answer for kp in controls)
        assert {kp.text for kp in controls}.isdisjoint(kp.text for kp in own)
        assert alignment.HasField("false_yes_rate")
        assert alignment.false_yes_rate == pytest.approx(
            sum(kp.score > 0.5 for kp in controls) / len(controls)
        )
        assert "extractor=openai:smollm2-135m" in alignment.status.engine
        assert "judge=openai:tiny-idefics3-random" in alignment.status.engine
        assert complexity.scorer == "rules/1" and json.loads(complexity.raw)["clues"] is not None
        # Random weights are labelled on every result built on them, and only there.
        assert alignment.status.random_weights and complexity.status.random_weights
        assert not evaluation.text_measures.status.random_weights
    summary = job.summary
    assert summary.diversity.status.state == OK and not summary.diversity.status.random_weights
    assert summary.alignment_status.state == OK and summary.alignment_status.random_weights
    assert summary.complexity_status.state == OK and summary.complexity_status.random_weights
    gallery = Path(job.gallery_path)
    gallery = gallery if gallery.is_absolute() else Path(job.directory) / gallery
    # Alignment and complexity per item, and the three set rows built on them.
    assert gallery.read_text().count(RANDOM_WEIGHTS_BADGE) == 2 * 2 + 3
