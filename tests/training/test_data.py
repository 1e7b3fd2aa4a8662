"""The SFT dataset builder: train split only, the short prompt, provenance and a stable hash."""

import json

import pytest
from storytelling.api.pools import builtin_pools, parse_pool
from storytelling.training.data import SplitError, pool_examples, teacher_examples, train_split
from storytelling.training.layout import RunLayout
from storytelling.training.records import file_hash, write_jsonl

from tests.story.scripted import SCENE, ScriptedEngine

POOL = builtin_pools()[0]
TEST_IDS = {e.id for e in POOL.candidates("test")}
TEST_SETTINGS = {e.setting for e in POOL.candidates("test")}


@pytest.mark.parametrize("split", ["test", "", "validation"])
def test_the_builder_refuses_any_split_but_train(split):
    with pytest.raises(SplitError, match="^split: training data must come from the 'train' split"):
        train_split(POOL, split)
    with pytest.raises(SplitError):
        pool_examples(POOL, split)


async def test_the_teacher_path_refuses_test_split_exemplars():
    with pytest.raises(SplitError, match="^split:"):
        await teacher_examples(ScriptedEngine(), POOL, count=1, seed=0, split="test")


def test_a_pool_without_splits_cannot_hold_out_a_test_split():
    pool = parse_pool("mine", "img_id,story\na,A story.\nb,Another story.\n")
    with pytest.raises(SplitError, match="^pool: 'mine' has no 'train' split"):
        train_split(pool)


def test_offline_examples_are_the_train_split_with_and_without_theme():
    examples = pool_examples(POOL)
    sources = {e.source_id for e in examples}
    assert sources == {e.id for e in POOL.candidates("train")} and not sources & TEST_IDS
    assert len(examples) == 2 * len(sources)
    themed = [e for e in examples if e.theme]
    assert len(themed) == len(sources) and not {e.theme for e in themed} & TEST_SETTINGS
    record = themed[0].record()
    assert record["prompt"][-1] == {
        "role": "user",
        "content": f"Write a description of a storytelling image. Theme: {themed[0].theme}",
    }
    assert record["completion"] == [{"role": "assistant", "content": themed[0].story}]
    assert record["provenance"]["prompt_version"] == "short/1"
    assert record["provenance"]["teacher"] == "pool:storytelling_v1/train"


async def test_teacher_stories_come_from_train_exemplars_and_train_themes():
    engine = ScriptedEngine()
    examples, rejected = await teacher_examples(engine, POOL, count=12, seed=3, theme_share=0.5)
    assert len(examples) == 12 and rejected == []
    for example, (messages, _) in zip(examples, engine.calls, strict=True):
        assert example.story == SCENE and example.teacher == "scripted:script"
        assert example.teacher_prompt == "cor-guided/1" and len(example.exemplar_ids) == 3
        assert not set(example.exemplar_ids) & TEST_IDS
        assert all(POOL.entries[int(i[3:]) - 1].story in messages[-1].content for i in example.exemplar_ids)
    themes = {e.theme for e in examples}
    assert "" in themes and len(themes) > 2 and not themes & TEST_SETTINGS
    again, _ = await teacher_examples(ScriptedEngine(), POOL, count=12, seed=3, theme_share=0.5)
    assert [(e.theme, e.exemplar_ids, e.seed) for e in again] == [
        (e.theme, e.exemplar_ids, e.seed) for e in examples
    ]


async def test_teacher_outputs_failing_the_checks_are_rejected_not_salvaged():
    engine = ScriptedEngine(replies=[(SCENE + " Then it rains, and later they leave.", "stop")])
    examples, rejected = await teacher_examples(engine, POOL, count=2, seed=0, max_attempts=1)
    assert examples == [] and [r.id for r in rejected] == ["teacher-0", "teacher-1"]
    assert all("multi_moment" in r.reason for r in rejected)
    assert len(engine.calls) == 4  # one regeneration each


def test_the_data_hash_names_the_content(tmp_path):
    layout = RunLayout(tmp_path)
    rows = [e.record() for e in pool_examples(POOL)[:4]]
    first = write_jsonl(layout.sft_data, rows)
    assert first == file_hash(layout.sft_data)
    assert write_jsonl(tmp_path / "again.jsonl", [json.loads(json.dumps(r)) for r in rows]) == first
    assert write_jsonl(tmp_path / "other.jsonl", rows[:3]) != first
