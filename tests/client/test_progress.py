"""JobProgress shows the orchestrator's counters from the events; pure, no network."""

from storytelling.client import JobProgress
from storytelling.v1 import common_pb2, pipeline_pb2

P = pipeline_pb2
STAGES = (P.STAGE_STORY, P.STAGE_RENDER, P.STAGE_EVALUATE)


def _job(items: int, **spec) -> P.Job:
    return P.Job(id="j", spec=P.JobSpec(items=items, **spec), state=P.JOB_STATE_QUEUED)


def _counts(*per_stage: tuple[int, int, int, int], succeeded: int = 0, failed: int = 0) -> P.JobCounts:
    """(done, running, failed, waiting) per stage, as the orchestrator sends them."""
    return P.JobCounts(
        stages=[
            P.StageCounts(stage=stage, done=d, running=r, failed=f, waiting=w)
            for stage, (d, r, f, w) in zip(STAGES, per_stage, strict=False)
        ],
        items_succeeded=succeeded,
        items_failed=failed,
    )


def _item_event(
    sequence: int, index: int, state: int, stage: int, counts: P.JobCounts, **fields
) -> P.JobEvent:
    item = P.Item(index=index, state=state, stage=stage, **fields)
    return P.JobEvent(sequence=sequence, item=item, counts=counts)


def _shown(progress: JobProgress) -> dict[int, tuple[int, int, int, int]]:
    return {s: (st.done, st.running, st.failed, st.waiting) for s, st in progress.stages.items()}


def test_counts_are_the_orchestrators_and_progress_is_the_latest_step() -> None:
    progress = JobProgress.for_job(_job(2))
    progress.update(P.JobEvent(sequence=1, job_state=P.JOB_STATE_RUNNING, counts=_counts()))
    running = _counts((1, 1, 0, 0), (0, 1, 0, 0))
    progress.update(_item_event(3, 0, P.ITEM_STATE_RUNNING, P.STAGE_RENDER, running))
    progress.update(P.JobEvent(progress=P.StageProgress(item_index=0, stage=P.STAGE_RENDER, step=2, total=4)))
    progress.update(P.JobEvent(progress=P.StageProgress(item_index=0, stage=P.STAGE_RENDER, step=3, total=4)))

    assert progress.state == P.JOB_STATE_RUNNING
    assert _shown(progress) == {
        P.STAGE_STORY: (1, 1, 0, 0),
        P.STAGE_RENDER: (0, 1, 0, 0),
        P.STAGE_EVALUATE: (0, 0, 0, 0),
    }
    assert progress.stages[P.STAGE_RENDER].step == (0, 3, 4)
    assert progress.last_sequence == 3, "progress events are not numbered"

    ended = _counts((2, 0, 0, 0), (1, 0, 1, 0), (1, 0, 0, 0), succeeded=1, failed=1)
    progress.update(_item_event(7, 1, P.ITEM_STATE_FAILED, P.STAGE_RENDER, ended, error="render: boom"))
    assert _shown(progress)[P.STAGE_RENDER] == (1, 0, 1, 0)
    assert progress.stages[P.STAGE_RENDER].step is None, "no step shown once nothing runs in the stage"
    assert (progress.items_succeeded, progress.items_failed) == (1, 1)
    assert progress.items[1].error == "render: boom"


def test_a_waiting_stage_shows_its_service_and_reason() -> None:
    progress = JobProgress.for_job(_job(3))
    counts = _counts((3, 0, 0, 0), (0, 1, 0, 2))
    counts.stages[1].wait.CopyFrom(P.ServiceWait(service="render", reason="render answered UNAVAILABLE"))
    progress.update(_item_event(9, 2, P.ITEM_STATE_WAITING, P.STAGE_RENDER, counts))
    render = progress.stages[P.STAGE_RENDER]
    assert (render.waiting, render.running) == (2, 1)
    assert render.wait is not None and render.wait.service == "render"
    progress.update(
        _item_event(10, 2, P.ITEM_STATE_RUNNING, P.STAGE_RENDER, _counts((3, 0, 0, 0), (0, 3, 0, 0)))
    )
    assert progress.stages[P.STAGE_RENDER].wait is None


def test_replayed_changes_are_ignored_and_a_snapshot_sets_state_and_counts() -> None:
    progress = JobProgress.for_job(_job(1))
    progress.update(
        _item_event(4, 0, P.ITEM_STATE_SUCCEEDED, P.STAGE_EVALUATE, _counts((1, 0, 0, 0), succeeded=1))
    )
    progress.update(_item_event(2, 0, P.ITEM_STATE_RUNNING, P.STAGE_STORY, _counts((0, 1, 0, 0))))
    assert _shown(progress)[P.STAGE_STORY] == (1, 0, 0, 0)
    snapshot = P.Job(id="j", state=P.JOB_STATE_RUNNING)
    progress.update(P.JobEvent(sequence=4, snapshot=snapshot, counts=_counts((1, 0, 0, 0), succeeded=1)))
    assert progress.state == P.JOB_STATE_RUNNING and progress.items_succeeded == 1


def test_skipped_stages_have_no_counter_and_finished_ends_the_job() -> None:
    assert list(JobProgress.for_job(_job(1, skip_render=True)).stages) == [P.STAGE_STORY, P.STAGE_EVALUATE]
    # The orchestrator's own list of stages wins (here: no per-item evaluation, only the set's diversity).
    listed = _job(1, skip_render=True)
    listed.stages.add(stage=P.STAGE_STORY)
    progress = JobProgress.for_job(listed)
    assert list(progress.stages) == [P.STAGE_STORY]
    finished = P.Job(id="j", state=P.JOB_STATE_SUCCEEDED, items_succeeded=1)
    finished.stages.add(stage=P.STAGE_STORY, done=1)
    counts = P.JobCounts(stages=finished.stages, items_succeeded=1)
    progress.update(P.JobEvent(sequence=1, finished=finished, counts=counts))
    assert progress.ended and progress.job == finished
    assert _shown(progress) == {P.STAGE_STORY: (1, 0, 0, 0)}


def test_a_job_from_get_job_starts_with_its_counters() -> None:
    job = _job(3)
    job.stages.extend([P.StageCounts(stage=s, done=1) for s in STAGES])
    job.items_succeeded, job.items_failed = 1, 2
    job.items.add(index=0, state=P.ITEM_STATE_SUCCEEDED, story=common_pb2.Story(text="s"))
    progress = JobProgress.for_job(job)
    assert _shown(progress) == {s: (1, 0, 0, 0) for s in STAGES}
    assert (progress.total, progress.items_succeeded, progress.items_failed) == (3, 1, 2)
    assert progress.items[0].story.text == "s"


def test_counts_of_a_stage_the_job_does_not_run_are_passed_over_not_the_end_of_the_list() -> None:
    progress = JobProgress.for_job(_job(2, skip_render=True))
    counts = P.JobCounts(
        stages=[P.StageCounts(stage=P.STAGE_RENDER, done=9), P.StageCounts(stage=P.STAGE_EVALUATE, done=2)]
    )
    progress.update(P.JobEvent(sequence=1, job_state=P.JOB_STATE_RUNNING, counts=counts))
    assert _shown(progress) == {P.STAGE_STORY: (0, 0, 0, 0), P.STAGE_EVALUATE: (2, 0, 0, 0)}


def test_a_job_state_change_already_seen_is_not_applied_again() -> None:
    progress = JobProgress.for_job(_job(1))
    progress.update(P.JobEvent(sequence=5, job_state=P.JOB_STATE_CANCELLED, counts=_counts((1, 0, 0, 0))))
    # A reconnect replays from an older sequence, and again from the last one it saw.
    progress.update(P.JobEvent(sequence=3, job_state=P.JOB_STATE_RUNNING, counts=_counts((0, 1, 0, 0))))
    progress.update(P.JobEvent(sequence=5, job_state=P.JOB_STATE_RUNNING, counts=_counts((0, 1, 0, 0))))
    assert progress.state == P.JOB_STATE_CANCELLED
    assert _shown(progress)[P.STAGE_STORY] == (1, 0, 0, 0)
    assert progress.last_sequence == 5


def test_step_progress_of_a_stage_the_job_skips_or_that_runs_nothing_is_ignored() -> None:
    progress = JobProgress.for_job(_job(1, skip_render=True))
    step = P.StageProgress(item_index=0, stage=P.STAGE_RENDER, step=1, total=4)
    progress.update(P.JobEvent(progress=step))
    assert list(progress.stages) == [P.STAGE_STORY, P.STAGE_EVALUATE]
    story_step = P.StageProgress(item_index=0, stage=P.STAGE_STORY, step=1, total=4)
    progress.update(P.JobEvent(progress=story_step))
    assert all(status.step is None for status in progress.stages.values()), "no item runs in the story stage"
    assert progress.last_sequence == 0
