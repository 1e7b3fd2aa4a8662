"""Pool loading: the shipped pool, user pools in the research CSV and JSONL formats, and broken files."""

from __future__ import annotations

import random

import pytest

from storytelling.story.dimensions import NAMES
from storytelling.api.pools import (
    PoolFormatError,
    PoolRegistry,
    builtin_pools,
    detect_format,
    load_pool,
    parse_pool,
)

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
            "line 1: the CSV header must have columns img_id,story; missing story (got img_id,text)",
        ),
        (
            "id,text\n1,hello\n",
            "csv",
            "line 1: the CSV header must have columns img_id,story; missing img_id, story (got id,text)",
        ),
        ('img_id,story\n1,"ok story"\n2,\n', "csv", "line 3: field 'story' is missing or empty"),
        ("img_id,story\n,some story\n", "csv", "line 2: field 'img_id' is missing or empty"),
        ("img_id,story\n1,a,b\n", "csv", "line 2: more values than header columns"),
        ('{"id": "a", "story": "x"}\n{"id": "b", "story": \n', "jsonl", "line 2: invalid JSON"),
        ('{"id": "a", "story": "x"}\n["b", "y"]\n', "jsonl", "line 2: expected a JSON object, got list"),
        ('{"id": "a"}\n', "jsonl", "line 1: field 'story' is missing or empty"),
        ('{"story": "x"}\n', "jsonl", "line 1: field 'id' is missing or empty"),
        ('{"id": true, "story": "x"}\n', "jsonl", "line 1: field 'id' must be a string, got True"),
        ('{"id": "a", "story": "x", "split": 1}\n', "jsonl", "line 1: field 'split' must be a string, got 1"),
        (
            '{"id": "a", "story": "x", "setting": ["kitchen"]}\n',
            "jsonl",
            "line 1: field 'setting' must be a string, got ['kitchen']",
        ),
        ('{"id": "a", "story": 3}\n', "jsonl", "line 1: field 'story' must be a string"),
        (
            '{"id": "a", "story": "x", "dimensions": ["weather"]}\n',
            "jsonl",
            (
                "line 1: field 'dimensions' has unknown ['weather']; known: time, location, character_role, "
                "character_relationship, event, event_causal_relationship, mental_state"
            ),
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


def test_unreadable_csv_is_a_format_error_naming_the_line():
    """csv.Error (here a field over csv.field_size_limit()) would otherwise escape as an internal error."""
    huge = "word " * 30_000
    with pytest.raises(PoolFormatError) as error:
        parse_pool("huge", f'img_id,story\n1,"{STORY}"\n2,"{huge}"\n'.encode(), "csv")
    message = str(error.value)
    assert message.startswith("line 3: unreadable CSV (field larger than field limit"), message


def test_csv_with_carriage_return_line_ends_is_read():
    """Old Mac exports end lines with a bare CR; reading them needs the csv module's newline=''."""
    pool = parse_pool("mac", b"img_id,story\r1,First story.\r2,Second story.\r")
    assert [(e.id, e.story) for e in pool.entries] == [("1", "First story."), ("2", "Second story.")]


def test_csv_quoted_line_breaks_are_kept_as_written():
    pool = parse_pool("crlf", b'img_id,story\r\n1,"First line.\r\nSecond line."\r\n2,Next.\r\n')
    assert [(e.id, e.story) for e in pool.entries] == [("1", "First line.\r\nSecond line."), ("2", "Next.")]


def test_text_content_with_a_bom_parses_like_bytes():
    """Text read with encoding="utf-8" keeps the BOM that bytes lose to utf-8-sig."""
    jsonl = parse_pool("p", '\ufeff{"id": "a", "story": "A story."}\n')
    csv_pool = parse_pool("p", "\ufeffimg_id,story\na,A story.\n")
    assert [(e.id, e.story) for e in jsonl.entries] == [("a", "A story.")]
    assert [(e.id, e.story) for e in csv_pool.entries] == [("a", "A story.")]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('\ufeff\n {"id": "a"}', "jsonl"),
        ('\r\n\t{"id": "a"}', "jsonl"),
        ('X{"id": "a"}', "csv"),
        ("img_id,story\n{", "csv"),
    ],
)
def test_format_detection_skips_only_bom_and_blank_space_before_the_brace(content, expected):
    assert detect_format(content) == expected


def test_jsonl_integer_ids_become_strings():
    pool = parse_pool("ints", f'{{"id": 7, "story": "{STORY}"}}\n')
    assert [e.id for e in pool.entries] == ["7"]


def test_load_pool_takes_the_format_from_the_extension_not_the_content(tmp_path):
    path = tmp_path / "mislabelled.csv"
    path.write_text(f'{{"id": "a", "story": "{STORY}"}}\n')
    with pytest.raises(PoolFormatError, match=rf"^{path}: line 1: the CSV header must have columns"):
        load_pool(path)


def test_pool_get_finds_entries_by_id():
    pool = parse_pool("p", f'img_id,story\na,"{STORY}"\nb,Another story.\n')
    assert pool.get("b") is pool.entries[1]
    assert pool.get("c") is None


def test_empty_split_means_the_whole_pool_and_an_unknown_split_has_no_entries():
    pool = parse_pool(
        "p",
        '{"id": "a", "story": "One.", "split": "train"}\n{"id": "b", "story": "Two.", "split": "test"}\n'
        '{"id": "c", "story": "Three."}\n',
    )
    assert [e.id for e in pool.candidates("")] == ["a", "b", "c"]
    assert pool.candidates("dev") == ()


def test_sampling_a_named_split_draws_only_from_it():
    pool = parse_pool(
        "p",
        '{"id": "a", "story": "One.", "split": "train"}\n{"id": "b", "story": "Two.", "split": "test"}\n',
    )
    assert [e.id for e in pool.sample(1, random.Random(0), split="test")] == ["b"]


def test_empty_registry_has_an_empty_default_name():
    """ListPools sends the default as a proto string: "" when no pool is registered."""
    registry = PoolRegistry()
    assert registry.default == ""
    assert registry.get("") is None


def test_shipped_pool_description_and_source_as_listed():
    (pool,) = builtin_pools()
    assert pool.description == (
        "Storytelling-scene descriptions written for StorytellingPainter: varied settings, "
        "cultures, eras, ages and cast sizes, each tagged with the dimensions it uses; train/test split."
    )
    assert pool.source == "StorytellingPainter project, Apache-2.0 (written for this project; not CogBench)"
