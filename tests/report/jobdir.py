"""Builds a realistic job directory from real protobuf messages and real Pillow images."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image as PILImage
from PIL import ImageDraw
from storytelling.api.layout import JOB_FILE, SUMMARY_FILE, write_item, write_message
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

D = common_pb2
OK = common_pb2.EvaluatorStatus(state=common_pb2.EvaluatorStatus.STATE_OK, engine="test-judge", seconds=0.5)
HOSTILE_STORY = (
    'A boy <script>window.__pwned = 1</script> & his "mother" at the sink </p><img src=x onerror=alert(1)>'
)


def picture(seed: int, fmt: str = "PNG", size: tuple[int, int] = (96, 64)) -> bytes:
    image = PILImage.new("RGB", size, (40 * seed % 255, 120, 200))
    ImageDraw.Draw(image).ellipse((10, 10, 50, 50), fill=(255, 220, 0))
    out = io.BytesIO()
    image.save(out, format=fmt)
    return out.getvalue()


def key_points() -> list[common_pb2.KeyPoint]:
    return [
        common_pb2.KeyPoint(
            dimension=D.DIMENSION_CHARACTER_ROLE,
            text="There is a boy on a stool.",
            question="Is there a boy on a stool?",
            answer="Yes",
            score=0.91,
            from_logprobs=True,
        ),
        common_pb2.KeyPoint(
            dimension=D.DIMENSION_EVENT,
            text="The sink is overflowing.",
            question="Is the sink overflowing?",
            answer="No",
            score=0.12,
            from_logprobs=True,
        ),
        common_pb2.KeyPoint(
            dimension=D.DIMENSION_TIME,
            text="There is a <b>Christmas</b> tree.",
            question="Is there a Christmas tree?",
            answer="no",
            score=0.0,
            is_control=True,
            source_story_id="story-9",
        ),
    ]


def make_job_dir(root: Path) -> Path:
    """Three items: fully evaluated with a fallback painter; evaluators not run or failed; story only."""
    job_dir = root / "jobs" / "job-123"
    spec = pipeline_pb2.JobSpec(items=3, name="Cookie <theft> & co", seed=7)
    spec.story.mode = D.STORY_MODE_COR_GUIDED
    job = pipeline_pb2.Job(
        id="job-123",
        spec=spec,
        state=pipeline_pb2.JOB_STATE_SUCCEEDED,
        items_succeeded=2,
        items_failed=1,
        seed=7,
        directory=str(job_dir),
    )
    job.created_at.FromSeconds(1_790_000_000)
    write_message(job_dir / JOB_FILE, job)

    fallback = common_pb2.PainterRef(
        kind="sketch", model="storyboard", is_fallback=True, note="no diffusion weights available offline"
    )
    write_item(
        job_dir,
        0,
        story=common_pb2.Story(id="story-0", text=HOSTILE_STORY),
        image=common_pb2.Image(
            data=picture(0), format=D.IMAGE_FORMAT_PNG, width=96, height=64, seed=11, painter=fallback
        ),
        evaluation=evaluation_pb2.ItemEvaluation(
            item_id="story-0",
            alignment=evaluation_pb2.AlignmentResult(
                status=OK,
                score=0.52,
                key_points=key_points(),
                false_yes_rate=0.0,
                by_dimension=[
                    common_pb2.DimensionScore(dimension=D.DIMENSION_CHARACTER_ROLE, score=0.91, count=1),
                    common_pb2.DimensionScore(dimension=D.DIMENSION_EVENT, score=0.12, count=1),
                ],
            ),
            complexity=evaluation_pb2.ComplexityResult(status=OK, score=0.4, scorer="rules/1"),
            text_measures=evaluation_pb2.TextMeasuresResult(
                status=OK, dimensions_covered=4, words=42, causal_links=1
            ),
        ),
    )
    diffusion = common_pb2.PainterRef(kind="triton", model="sd-turbo")
    write_item(
        job_dir,
        1,
        story=common_pb2.Story(
            id="story-1", text="At 3 AM a nurse finds her twin brother asleep in the lobby."
        ),
        image=common_pb2.Image(
            data=picture(1, "JPEG"),
            format=D.IMAGE_FORMAT_JPEG,
            width=96,
            height=64,
            painter=diffusion,
            steps=4,
        ),
        evaluation=evaluation_pb2.ItemEvaluation(
            item_id="story-1",
            alignment=evaluation_pb2.AlignmentResult(
                status=common_pb2.EvaluatorStatus(
                    state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                    reason="no vision-language judge configured",
                )
            ),
            complexity=evaluation_pb2.ComplexityResult(
                status=common_pb2.EvaluatorStatus(
                    state=common_pb2.EvaluatorStatus.STATE_FAILED, reason="judge timed out after 30 s"
                )
            ),
        ),
    )
    write_item(job_dir, 2, story=common_pb2.Story(id="story-2", text="A referee slips on a banana peel."))

    write_message(
        job_dir / SUMMARY_FILE,
        evaluation_pb2.SetSummary(
            diversity=evaluation_pb2.DiversityResult(
                status=OK,
                diversity=0.61,
                per_story=[0.6, 0.62, 0.61],
                vendi_score=2.4,
                k=2,
                embedder="all-MiniLM-L6-v2",
            ),
            mean_alignment=0.52,
            mean_false_yes_rate=0.0,
            items=3,
            alignment_status=OK,
            alignment_by_dimension=[
                common_pb2.DimensionScore(dimension=D.DIMENSION_CHARACTER_ROLE, score=0.91, count=1),
                common_pb2.DimensionScore(dimension=D.DIMENSION_EVENT, score=0.12, count=1),
            ],
            complexity_status=common_pb2.EvaluatorStatus(
                state=common_pb2.EvaluatorStatus.STATE_NOT_RUN,
                reason="no vision-language model available offline",
            ),
        ),
    )
    return job_dir
