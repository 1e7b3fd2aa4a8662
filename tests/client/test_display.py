"""The paint command's progress output, on plain JobProgress values."""

import io

from storytelling.cli.display import BarDisplay, LineDisplay, stage_line
from storytelling.client import JobProgress, StageStatus
from storytelling.v1 import common_pb2, pipeline_pb2

P = pipeline_pb2


def test_stage_line() -> None:
    status = StageStatus(P.STAGE_RENDER, total=4, done=1, failed=1, running=1, step=(2, 3, 8))
    assert stage_line(status, fill="#", empty="-") == (
        "render    ##############--------------    1/4  (1 running, 1 failed, item 2 step 3/8)"
    )


def _counts(story: tuple[int, int, int], render: tuple[int, int, int]) -> P.JobCounts:
    """(done, running, failed) of story and render, as the orchestrator sends them."""
    return P.JobCounts(
        stages=[
            P.StageCounts(stage=P.STAGE_STORY, done=story[0], running=story[1], failed=story[2]),
            P.StageCounts(stage=P.STAGE_RENDER, done=render[0], running=render[1], failed=render[2]),
        ]
    )


def _events() -> list[P.JobEvent]:
    story = common_pb2.Story(text="s")
    return [
        P.JobEvent(sequence=1, job_state=P.JOB_STATE_RUNNING, counts=_counts((0, 0, 0), (0, 0, 0))),
        P.JobEvent(
            sequence=2,
            item=P.Item(index=0, state=P.ITEM_STATE_RUNNING, stage=P.STAGE_RENDER, story=story),
            counts=_counts((1, 0, 0), (0, 1, 0)),
        ),
        P.JobEvent(
            sequence=3,
            item=P.Item(
                index=0,
                state=P.ITEM_STATE_FAILED,
                stage=P.STAGE_RENDER,
                story=story,
                error="render: out of memory",
            ),
            counts=_counts((1, 0, 0), (0, 0, 1)),
        ),
    ]


def _run(display_type: type) -> str:
    out = io.StringIO()
    progress = JobProgress.for_job(P.Job(id="j", spec=P.JobSpec(items=1, skip_evaluation=True)))
    display = display_type(out)
    for event in _events():
        progress.update(event)
        display.show(progress, event)
    display.close()
    return out.getvalue()


def test_line_display_prints_each_change_once() -> None:
    assert _run(LineDisplay).splitlines() == [
        "job j: running",
        "item 0: story done (1/1)",
        "item 0: render failed (0/1): render: out of memory",
    ]


def test_bar_display_redraws_in_place() -> None:
    frames = _run(BarDisplay).split("\x1b[3F")
    assert len(frames) == 3  # drawn once, then moved up over its three lines twice
    assert frames[-1] == (
        "\x1b[2Kstory     ████████████████████████████    1/1\n"
        "\x1b[2Krender    ████████████████████████████    0/1  (1 failed)\n"
        "\x1b[2Kjob j: running\n"
    )


def test_a_waiting_stage_is_shown_with_its_service_then_when_it_is_back() -> None:
    out = io.StringIO()
    progress = JobProgress.for_job(P.Job(id="j", spec=P.JobSpec(items=2, skip_evaluation=True)))
    display = LineDisplay(out)
    waiting = _counts((2, 0, 0), (0, 0, 0))
    waiting.stages[1].waiting = 2
    waiting.stages[1].wait.CopyFrom(
        P.ServiceWait(
            service="render", reason="render answered UNAVAILABLE: restarting", since={"seconds": 3600}
        )
    )
    back = _counts((2, 0, 0), (0, 2, 0))
    for event in [
        P.JobEvent(
            sequence=5, item=P.Item(index=0, state=P.ITEM_STATE_WAITING, stage=P.STAGE_RENDER), counts=waiting
        ),
        P.JobEvent(
            sequence=6, item=P.Item(index=1, state=P.ITEM_STATE_WAITING, stage=P.STAGE_RENDER), counts=waiting
        ),
        P.JobEvent(
            sequence=7, item=P.Item(index=0, state=P.ITEM_STATE_RUNNING, stage=P.STAGE_RENDER), counts=back
        ),
    ]:
        progress.update(event)
        display.show(progress, event)
    assert out.getvalue().splitlines() == [
        "render: waiting for render since 01:00:00 UTC: render answered UNAVAILABLE: restarting",
        "item 0: story done (2/2)",
        "item 1: story done (2/2)",
        "render: render is back",
    ]
    status = StageStatus(P.STAGE_RENDER, total=2, waiting=2, wait=waiting.stages[1].wait)
    assert stage_line(status, fill="#", empty="-").endswith(
        "(2 waiting for render since 01:00:00 UTC: render answered UNAVAILABLE: restarting)"
    )
