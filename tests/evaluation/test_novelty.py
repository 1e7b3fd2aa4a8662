"""Novelty against each story's own exemplars and the pool, and memorisation, on constructed sets."""

import pytest

from storytelling.evaluation.core import Evaluation, Item, Kind
from storytelling.api.pools import builtin_pools
from storytelling.v1 import common_pb2, evaluation_pb2
from tests.evaluation.test_diversity_sets import DISTINCT, PARAPHRASES

POOL = builtin_pools()[0]
COPIED = POOL.get("sp-042").story
# sp-042 reworded sentence by sentence: a near-copy, not the same text.
REWORDED = POOL.get("sp-017").story.replace("is", "seems").replace("the", "a")


@pytest.fixture
def core(embedder) -> Evaluation:
    return Evaluation(embedder)


async def test_a_copied_pool_story_is_flagged_with_the_story_it_copies(core) -> None:
    items = [Item("copy", COPIED), Item("reworded", REWORDED), Item("new", DISTINCT[1])]
    copy, reworded, new = await core.novelty(items)
    assert copy.report.memorised and copy.report.nearest_pool_story == ("storytelling_v1", "sp-042")
    assert copy.report.memorisation == pytest.approx(1.0, abs=1e-4) and copy.report.pool_novelty < 1e-4
    assert reworded.report.memorised and reworded.report.nearest_pool_story[1] == "sp-017"
    assert not new.report.memorised and new.report.memorisation < 0.6 and new.report.pool_novelty > 0.4
    assert copy.report.exemplar_novelty is None and copy.report.exemplars == 0


async def test_exemplar_novelty_is_against_each_storys_own_exemplars(core) -> None:
    """The cookie story paraphrases its own exemplars; the referee story is new against the same ones."""
    items = [
        Item("cookies", PARAPHRASES[0], exemplars=tuple(PARAPHRASES[1:])),
        Item("referee", DISTINCT[1], exemplars=tuple(PARAPHRASES[1:])),
        Item("nurse", DISTINCT[2], exemplars=(DISTINCT[3],)),
    ]
    cookies, referee, nurse = (o.report for o in await core.novelty(items))
    assert cookies.exemplar_novelty < 0.35 and cookies.exemplars == 3
    assert referee.exemplar_novelty > 0.7 and nurse.exemplar_novelty > 0.5 and nurse.exemplars == 1


async def test_the_set_summary_reports_memorisation_and_exemplar_novelty(core) -> None:
    from storytelling.evaluation import convert

    items = [
        Item("copy", COPIED),
        Item("cookies", PARAPHRASES[0], exemplars=tuple(PARAPHRASES[1:])),
        Item("new", DISTINCT[1]),
    ]
    members = []
    async for result in core.evaluate_set(items, [Kind.NOVELTY]):
        evaluation = convert.item_result(result, core.embedder.name)
        assert evaluation.novelty.status.state == common_pb2.EvaluatorStatus.STATE_OK
        members.append(
            convert.member(result.item_id, next(i.story for i in items if i.id == result.item_id), evaluation)
        )
    summary = convert.summary(await core.summarize(members), core.embedder.name)
    novelty = summary.novelty
    assert novelty.memorised_items == 1 and novelty.most_memorised_item == "copy"
    assert novelty.most_memorised_pool_story == common_pb2.ExemplarRef(pool="storytelling_v1", id="sp-042")
    assert novelty.items_with_exemplars == 1 and novelty.mean_exemplar_novelty < 0.35
    assert novelty.max_memorisation == pytest.approx(1.0, abs=1e-4)
    assert isinstance(summary, evaluation_pb2.SetSummary) and summary.novelty_counts.ok == 3
