"""Pool loading: the shipped pool, user pools in the research CSV and JSONL formats, and broken files."""

from __future__ import annotations

import random

import pytest

from storytelling.story.dimensions import NAMES
from storytelling.api.pools import PoolFormatError, PoolRegistry, builtin_pools, load_pool, parse_pool

STORY = (
    "A boy on a tipping stool reaches for cookies while his mother, lost in thought, lets the sink overflow."
)


def test_shipped_pool_is_tagged_split_and_covers_every_dimension():
    (pool,) = builtin_pools()
    assert pool.name == "storytelling_v1"
    assert len(pool.entries) >= 100
    assert set(pool.splits) == {"train", "test"} and pool.splits["train"] > pool.splits["test"] > 0
    assert set(pool.dimension_counts()) == set(NAMES)
    assert all(entry.dimensions and entry.setting and len(entry.story.split()) > 40 for entry in pool.entries)
    assert len({entry.story for entry in pool.entries}) == len(pool.entries)


def test_research_csv_with_quoted_commas_and_extra_columns(tmp_path):
    path = tmp_path / "cogbench_like.csv"
    path.write_text(f'img_id,story,notes\n7,"{STORY}",x\nb-2,"Two, quoted: ""yes"" and more words",\n')
    pool = load_pool(path)
    assert pool.name == "cogbench_like"
    assert [e.id for e in pool.entries] == ["7", "b-2"]
    assert pool.entries[0].story == STORY
    assert pool.entries[1].story == 'Two, quoted: "yes" and more words'
    assert pool.splits == {} and pool.candidates(None) == pool.entries


def test_jsonl_with_optional_fields_and_blank_lines():
    content = (
        f'{{"id": "a", "story": "{STORY}", "dimensions": ["event", "mental_state"], "split": "train"}}\n\n'
        f'{{"id": "b", "story": "{STORY} Again.", "split": "test", "setting": "kitchen"}}\n'
    ).encode()
    pool = parse_pool("mine", content)
    assert [e.id for e in pool.entries] == ["a", "b"]
    assert pool.entries[0].dimensions == ("event", "mental_state")
    assert pool.splits == {"train": 1, "test": 1}
    assert [e.id for e in pool.candidates(None)] == ["a"]  # train by default where there is a split
    assert [e.id for e in pool.candidates("test")] == ["b"]


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        ("", "", "the pool is empty"),
        ("   \n", "jsonl", "the pool is empty"),
        (
            "img_id,text\n1,hello\n",
            "csv",
            "line 1: the CSV header must have columns img_id,story; missing story",
        ),
        ('img_id,story\n1,"ok story"\n2,\n', "csv", "line 3: field 'story' is missing or empty"),
        ("img_id,story\n,some story\n", "csv", "line 2: field 'img_id' is missing or empty"),
        ("img_id,story\n1,a,b\n", "csv", "line 2: more values than header columns"),
        ('{"id": "a", "story": "x"}\n{"id": "b", "story": \n', "jsonl", "line 2: invalid JSON"),
        ('{"id": "a", "story": "x"}\n["b", "y"]\n', "jsonl", "line 2: expected a JSON object, got list"),
        ('{"id": "a"}\n', "jsonl", "line 1: field 'story' is missing or empty"),
        ('{"id": "a", "story": 3}\n', "jsonl", "line 1: field 'story' must be a string"),
        (
            '{"id": "a", "story": "x", "dimensions": ["weather"]}\n',
            "jsonl",
            "line 1: field 'dimensions' has unknown",
        ),
        (
            '{"id": "a", "story": "x", "dimensions": "event"}\n',
            "jsonl",
            "line 1: field 'dimensions' must be a list",
        ),
        ('{"id": "a", "story": "x", "split": "dev"}\n', "jsonl", "line 1: field 'split' must be one of"),
        (
            '{"id": "a", "story": "x"}\n\n{"id": "a", "story": "y"}\n',
            "jsonl",
            "line 3: duplicate id 'a' (first on line 1)",
        ),
        ("img_id,story\n", "csv", "the pool has no stories"),
        ("a,b", "yaml", "unknown format 'yaml'"),
    ],
)
def test_broken_pools_name_the_line_and_field(content, fmt, message):
    with pytest.raises(PoolFormatError) as error:
        parse_pool("broken", content.encode(), fmt)
    assert str(error.value).startswith(message), str(error.value)


def test_non_utf8_bytes_and_file_errors_name_the_file(tmp_path):
    with pytest.raises(PoolFormatError, match="not UTF-8"):
        parse_pool("latin", "img_id,story\n1,caf\u00e9\n".encode("latin-1"))
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "story": ""}\n')
    with pytest.raises(PoolFormatError, match=rf"^{path}: line 1: field 'story'"):
        load_pool(path)


def test_format_is_detected_from_content():
    jsonl = parse_pool("p", f'\ufeff{{"id": "1", "story": "{STORY}"}}'.encode())
    csv_pool = parse_pool("p", f'img_id,story\n1,"{STORY}"\n'.encode())
    assert jsonl.entries == csv_pool.entries


def test_sampling_is_seeded_and_from_the_train_split():
    (pool,) = builtin_pools()
    first = pool.sample(5, random.Random(3))
    assert first == pool.sample(5, random.Random(3))
    assert first != pool.sample(5, random.Random(4))
    assert all(e.split == "train" for e in first)


def test_sampling_is_without_replacement():
    """Drawing a whole small pool returns each entry once: with replacement, 4 draws from 4 entries
    repeat one with probability 0.91, so twenty seeds cannot all pass by chance."""
    rows = "".join(f'{i},"{STORY}"\n' for i in range(4))
    pool = parse_pool("four", f"img_id,story\n{rows}".encode())
    for seed in range(20):
        assert sorted(e.id for e in pool.sample(4, random.Random(seed))) == ["0", "1", "2", "3"]


def test_registry_default_and_duplicates():
    a = parse_pool("a", f'img_id,story\n1,"{STORY}"\n'.encode())
    b = parse_pool("b", f'img_id,story\n1,"{STORY}"\n'.encode())
    registry = PoolRegistry([a, b], default="b")
    assert registry.get("") is b and registry.get("a") is a and registry.get("zzz") is None
    assert registry.names() == ["a", "b"]
    with pytest.raises(ValueError, match="registered twice"):
        registry.add(a)
