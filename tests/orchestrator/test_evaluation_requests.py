"""What the orchestrator asks of the evaluation service per item and at the end of a job."""

from storytelling.orchestrator.stages import Stages
from storytelling.v1 import common_pb2, evaluation_pb2, pipeline_pb2

from .conftest import finished, spec
from .stages import LocalRender, LocalStory, RecordingEvaluate

EXEMPLARS = [common_pb2.ExemplarRef(pool="storytelling_v1", id=f"sp-00{n}") for n in (1, 2, 3)]


class StoryWithExemplars(LocalStory):
    async def write(self, options, index, seed):
        story = await super().write(options, index, seed)
        story.provenance.exemplars.extend(EXEMPLARS)
        return story


async def test_each_item_carries_its_exemplars_and_controls_seeded_by_the_job(make_manager):
    evaluate = RecordingEvaluate()
    manager = await make_manager(Stages(StoryWithExemplars(), LocalRender(), evaluate))
    job_spec = spec(3, seed=11)
    job_spec.story.pool = "storytelling_v1"
    done = await finished(manager, (await manager.create(job_spec)).id)
    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED and len(evaluate.requests) == 3
    for request in evaluate.requests:
        assert list(request.item.exemplar_refs) == EXEMPLARS
        assert request.alignment.control_seed == 11 and request.alignment.control_pool == "storytelling_v1"
    (summary_request,) = evaluate.summaries
    assert [m.item_id for m in summary_request.items] == [i.story.id for i in done.items]
    assert all(m.HasField("evaluation") for m in summary_request.items)


async def test_a_spec_seed_for_controls_wins_over_the_job_seed(make_manager):
    evaluate = RecordingEvaluate()
    manager = await make_manager(Stages(LocalStory(), LocalRender(), evaluate))
    job_spec = spec(1, seed=11, alignment=evaluation_pb2.AlignmentOptions(control_seed=5))
    await finished(manager, (await manager.create(job_spec)).id)
    assert evaluate.requests[0].alignment.control_seed == 5


async def test_items_are_evaluated_by_the_chosen_evaluators_and_diversity_only_over_the_set(make_manager):
    evaluate = RecordingEvaluate()
    manager = await make_manager(Stages(LocalStory(), LocalRender(), evaluate))
    chosen = [evaluation_pb2.EVALUATOR_COMPLEXITY, evaluation_pb2.EVALUATOR_DIVERSITY]
    done = await finished(manager, (await manager.create(spec(2, evaluators=chosen))).id)
    assert done.state == pipeline_pb2.JOB_STATE_SUCCEEDED
    assert [list(r.evaluators) for r in evaluate.requests] == [[evaluation_pb2.EVALUATOR_COMPLEXITY]] * 2
    assert not evaluate.summaries[0].skip_diversity
