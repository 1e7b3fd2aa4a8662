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


def _events() -> list[P.JobEvent]:
    return [
        P.JobEvent(sequence=1, job_state=P.JOB_STATE_RUNNING),
        P.JobEvent(
            sequence=2,
            item=P.Item(
                index=0, state=P.ITEM_STATE_RUNNING, stage=P.STAGE_RENDER, story=common_pb2.Story(text="s")
            ),
        ),
        P.JobEvent(
            sequence=3,
            item=P.Item(
                index=0,
                state=P.ITEM_STATE_FAILED,
                stage=P.STAGE_RENDER,
                story=common_pb2.Story(text="s"),
                error="render: out of memory",
            ),
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
