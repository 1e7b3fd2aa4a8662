"""JobProgress folds events into per-stage counts; pure, no network."""

from storytelling.client import JobProgress
from storytelling.v1 import common_pb2, pipeline_pb2

P = pipeline_pb2


def _job(items: int, **spec) -> P.Job:
    return P.Job(id="j", spec=P.JobSpec(items=items, **spec), state=P.JOB_STATE_QUEUED)


def _item_event(sequence: int, index: int, state: int, stage: int, **fields) -> P.JobEvent:
    return P.JobEvent(sequence=sequence, item=P.Item(index=index, state=state, stage=stage, **fields))


def _counts(progress: JobProgress) -> dict[int, tuple[int, int, int]]:
    return {s: (st.done, st.running, st.failed) for s, st in progress.stages.items()}


def test_counts_follow_items_through_the_stages() -> None:
    progress = JobProgress.for_job(_job(2))
    progress.update(P.JobEvent(sequence=1, job_state=P.JOB_STATE_RUNNING))
    progress.update(_item_event(2, 0, P.ITEM_STATE_RUNNING, P.STAGE_STORY))
    progress.update(_item_event(3, 0, P.ITEM_STATE_RUNNING, P.STAGE_RENDER, story=common_pb2.Story(text="s")))
    progress.update(
        P.JobEvent(sequence=4, progress=P.StageProgress(item_index=0, stage=P.STAGE_RENDER, step=2, total=4))
    )
    progress.update(_item_event(5, 1, P.ITEM_STATE_RUNNING, P.STAGE_STORY))

    assert progress.state == P.JOB_STATE_RUNNING
    assert _counts(progress) == {
        P.STAGE_STORY: (1, 1, 0),
        P.STAGE_RENDER: (0, 1, 0),
        P.STAGE_EVALUATE: (0, 0, 0),
    }
    assert progress.stages[P.STAGE_RENDER].step == (0, 2, 4)

    progress.update(_item_event(6, 0, P.ITEM_STATE_SUCCEEDED, P.STAGE_EVALUATE))
    progress.update(_item_event(7, 1, P.ITEM_STATE_FAILED, P.STAGE_RENDER, error="render: boom"))
    assert _counts(progress) == {
        P.STAGE_STORY: (2, 0, 0),
        P.STAGE_RENDER: (1, 0, 1),
        P.STAGE_EVALUATE: (1, 0, 0),
    }
    assert progress.stages[P.STAGE_RENDER].step is None
    assert (progress.items_succeeded, progress.items_failed) == (1, 1)


def test_replayed_events_are_ignored() -> None:
    progress = JobProgress.for_job(_job(1))
    progress.update(_item_event(1, 0, P.ITEM_STATE_SUCCEEDED, P.STAGE_EVALUATE))
    progress.update(_item_event(1, 0, P.ITEM_STATE_RUNNING, P.STAGE_STORY))
    assert _counts(progress)[P.STAGE_EVALUATE] == (1, 0, 0)


def test_skipped_stages_have_no_counter_and_finished_ends_the_job() -> None:
    assert list(JobProgress.for_job(_job(1, skip_render=True)).stages) == [P.STAGE_STORY, P.STAGE_EVALUATE]
    # The orchestrator's own list of stages wins (here: no per-item evaluation, only the set's diversity).
    listed = _job(1, skip_render=True)
    listed.stages.add(stage=P.STAGE_STORY)
    progress = JobProgress.for_job(listed)
    assert list(progress.stages) == [P.STAGE_STORY]
    finished = P.Job(
        id="j",
        state=P.JOB_STATE_SUCCEEDED,
        items=[P.Item(index=0, state=P.ITEM_STATE_SUCCEEDED, stage=P.STAGE_STORY)],
    )
    progress.update(P.JobEvent(sequence=1, finished=finished))
    assert progress.ended and progress.job == finished
    assert _counts(progress) == {P.STAGE_STORY: (1, 0, 0)}


def test_a_job_in_flight_is_counted_from_its_items_when_watching_starts() -> None:
    job = P.Job(id="j7", spec=P.JobSpec(items=5), state=P.JOB_STATE_RUNNING)
    job.items.extend(
        [
            P.Item(index=0, state=P.ITEM_STATE_RUNNING, stage=P.STAGE_STORY),
            P.Item(index=1, state=P.ITEM_STATE_RUNNING, stage=P.STAGE_STORY),
            P.Item(index=2, state=P.ITEM_STATE_FAILED, stage=P.STAGE_RENDER, error="render: boom"),
            P.Item(index=3, state=P.ITEM_STATE_FAILED, stage=P.STAGE_RENDER, error="render: boom"),
            P.Item(index=4, state=P.ITEM_STATE_SUCCEEDED, stage=P.STAGE_EVALUATE),
        ]
    )
    progress = JobProgress.for_job(job)
    assert (progress.job_id, progress.total, progress.state) == ("j7", 5, P.JOB_STATE_RUNNING)
    assert not progress.ended
    assert sorted(progress.items) == [0, 1, 2, 3, 4] and progress.items[2].error == "render: boom"
    assert [status.total for status in progress.stages.values()] == [5, 5, 5]
    assert _counts(progress) == {
        P.STAGE_STORY: (3, 2, 0),
        P.STAGE_RENDER: (1, 0, 2),
        P.STAGE_EVALUATE: (1, 0, 0),
    }
    assert (progress.items_succeeded, progress.items_failed) == (1, 2)


def test_step_progress_of_a_stage_the_job_skips_is_ignored() -> None:
    progress = JobProgress.for_job(_job(1, skip_render=True))
    progress.update(
        P.JobEvent(sequence=1, progress=P.StageProgress(item_index=0, stage=P.STAGE_RENDER, step=1, total=4))
    )
    assert list(progress.stages) == [P.STAGE_STORY, P.STAGE_EVALUATE]
    assert all(status.step is None for status in progress.stages.values())
    assert progress.last_sequence == 1
