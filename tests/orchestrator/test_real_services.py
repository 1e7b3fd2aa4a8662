"""The orchestrator process against the real render and evaluation services (sketch painter, bundled
MiniLM embedder, spaCy text measures). Stories come from the in-process story stage: the embedded LLM
takes minutes per story on a loaded 2-core machine, and story-service wiring is covered by the same
StoryClient against a real server in test_clients.py."""

import asyncio
import difflib
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest

from storytelling.orchestrator.stages import Stages
from storytelling.runtime.process import start_service_process
from storytelling.runtime.testing import running_service, service_process
from google.protobuf import json_format
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2, pipeline_pb2_grpc

from .stage_servers import LocalStageServices, story_indexes
from .stages import LocalEvaluate, LocalRender, LocalStory

ITEMS, SEED = 3, 5
OK, NOT_RUN = common_pb2.EvaluatorStatus.STATE_OK, common_pb2.EvaluatorStatus.STATE_NOT_RUN
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, sys.path))}


@pytest.mark.slow
async def test_a_job_through_the_real_render_and_evaluation_services(tmp_path: Path):
    stories = LocalStageServices(
        Stages(LocalStory(), LocalRender(), LocalEvaluate()),
        story_indexes(SEED, ITEMS).__getitem__,
        ["story"],
    )
    with (
        service_process("storytelling.render", env=ENV) as render,
        service_process("storytelling.evaluation", env=ENV, ready_timeout=300) as evaluation,
    ):
        async with running_service(stories) as story:
            args = ["--data-dir", str(tmp_path), "--story-address", story.server.address]
            args += ["--render-address", render.address, "--evaluation-address", evaluation.address]
            orchestrator = start_service_process("storytelling.orchestrator", args=args, env=ENV)
            try:
                await asyncio.to_thread(orchestrator.wait_serving, 60)
                async with grpc.aio.insecure_channel(orchestrator.address) as channel:
                    stub = pipeline_pb2_grpc.PipelineServiceStub(channel)
                    spec = pipeline_pb2.JobSpec(items=ITEMS, seed=SEED, render={"width": 128, "height": 128})
                    job = await stub.CreateJob(pipeline_pb2.CreateJobRequest(spec=spec))
                    events = [e async for e in stub.WatchJob(pipeline_pb2.WatchJobRequest(job_id=job.id))]
                    done = await stub.GetJob(pipeline_pb2.GetJobRequest(job_id=job.id))
            finally:
                orchestrator.stop()
            # The same items, as a folder, through `storytelling evaluate` against the same service.
            folder = export_items(done, tmp_path / "export")
            cli = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "storytelling.cli.main", "evaluate", str(folder),
                 "--evaluation-address", evaluation.address, "--seed", str(done.seed)],
                capture_output=True, text=True, env={**os.environ, **ENV}, timeout=600,
            )  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    evaluated = json_format.Parse(
        (folder / "evaluation" / "summary.json").read_text(), evaluation_pb2.SetSummary()
    )
    differences = list(
        difflib.unified_diff(str(numbers(done.summary)).splitlines(), str(numbers(evaluated)).splitlines())
    )
    assert not differences, "a job and storytelling evaluate must agree:\n" + "\n".join(differences)

    assert events[-1].finished.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert done.items_succeeded == ITEMS, [item.error for item in done.items]
    for item in done.items:
        assert item.image.painter.kind == "sketch" and item.image.painter.is_fallback
        assert (item.image.width, item.image.height, item.image.seed) == (128, 128, item.image_seed)
        assert (Path(done.directory) / item.artifacts.image_path).stat().st_size > 0
        measures = item.evaluation.text_measures
        assert measures.status.state == OK and measures.words == len(item.story.text.split())
        assert item.evaluation.alignment.status.state in (OK, NOT_RUN)
    diversity = done.summary.diversity
    assert diversity.status.state == OK and len(diversity.per_story) == ITEMS and 0 < diversity.diversity <= 2
    assert Path(done.gallery_path).is_file()
    assert done.summary.text_measures_counts.ok == ITEMS and done.summary.novelty_counts.ok == ITEMS
    assert done.summary.alignment_counts.not_run == ITEMS and not done.summary.HasField("mean_alignment")


def export_items(job: pipeline_pb2.Job, folder: Path) -> Path:
    """The job's stories and images as a plain folder: stories.jsonl and <story id>.png."""
    folder.mkdir(parents=True)
    lines = []
    for item in job.items:
        lines.append(json.dumps({"id": item.story.id, "story": item.story.text}))
        (folder / f"{item.story.id}.png").write_bytes(
            (Path(job.directory) / item.artifacts.image_path).read_bytes()
        )
    (folder / "stories.jsonl").write_text("\n".join(lines) + "\n")
    return folder


def numbers(summary: evaluation_pb2.SetSummary) -> evaluation_pb2.SetSummary:
    """The summary without wall times, the only fields two runs never share."""
    copy = evaluation_pb2.SetSummary()
    copy.CopyFrom(summary)
    copy.diversity.status.ClearField("seconds")
    for status in (copy.alignment_status, copy.complexity_status):
        status.ClearField("seconds")
    return copy
