"""The storyteller core without a network: validation, prompts, exemplars, seeds, rejections, provenance."""

from __future__ import annotations

import pytest

from storytelling.runtime.errors import FailedPrecondition, InvalidArgument
from storytelling.story.core import InlinePool, Limits, Storyteller, StoryOptions, derive_seed
from storytelling.api.pools import PoolRegistry, builtin_pools
from storytelling.story.prompts import Mode
from tests.story.scripted import SCENE, ScriptedEngine


def storyteller(engine: ScriptedEngine | None = None, **limits) -> Storyteller:
    return Storyteller(
        {"scripted": engine or ScriptedEngine()},
        PoolRegistry(builtin_pools()),
        default_engine="scripted",
        limits=Limits(**limits),
    )


@pytest.mark.parametrize(
    ("options", "field", "message"),
    [
        (StoryOptions(engine="gpt-9"), "options.engine", "unknown engine 'gpt-9'; configured: scripted"),
        (StoryOptions(pool="nope"), "options.pool", "unknown pool 'nope'; available: storytelling_v1"),
        (StoryOptions(num_exemplars=200), "options.num_exemplars", "must be in [1, 8], got 200"),
        (StoryOptions(num_exemplars=-1), "options.num_exemplars", "must be in [1, 8], got -1"),
        (StoryOptions(split="dev"), "options.split", "pool 'storytelling_v1' has no split 'dev'"),
        (StoryOptions(temperature=3.0), "options.sampling.temperature", "must be in [0, 2], got 3"),
        (StoryOptions(temperature=-0.1), "options.sampling.temperature", "must be in [0, 2], got -0.1"),
        (StoryOptions(top_p=0.0), "options.sampling.top_p", "must be in (0, 1], got 0"),
        (StoryOptions(max_tokens=8), "options.sampling.max_tokens", "must be in [16, 4096], got 8"),
        (StoryOptions(max_tokens=5000), "options.sampling.max_tokens", "must be in [16, 4096], got 5000"),
        (StoryOptions(max_attempts=11), "options.max_attempts", "must be in [0, 10], got 11"),
        (StoryOptions(theme="x" * 301), "options.theme", "at most 300 characters"),
        (
            StoryOptions(inline_pool=InlinePool("mine", b"")),
            "options.inline_pool.content",
            "the pool is empty",
        ),
        (
            StoryOptions(inline_pool=InlinePool("mine", b"img_id,story\n1,\n")),
            "options.inline_pool.content",
            "line 2: field 'story' is missing or empty",
        ),
        (
            StoryOptions(inline_pool=InlinePool("mine", b'{"id": 1, "story": "a"}', "xml")),
            "options.inline_pool.format",
            "must be 'csv', 'jsonl' or empty",
        ),
        (
            StoryOptions(inline_pool=InlinePool("mine", b'img_id,story\n1,"a b"\n2,"c d"\n')),
            "options.num_exemplars",
            "3 exemplars requested but pool 'mine' has 2",
        ),
    ],
)
async def test_bad_options_name_the_field_and_never_reach_the_engine(options, field, message):
    engine = ScriptedEngine()
    with pytest.raises(InvalidArgument) as error:
        await storyteller(engine).write(options, seed=1)
    assert error.value.field == field
    assert error.value.message.startswith(message), error.value.message
    assert engine.calls == []


async def test_k_larger_than_the_split_is_rejected():
    (pool,) = builtin_pools()
    k = pool.splits["test"] + 1
    with pytest.raises(InvalidArgument) as error:
        await storyteller(max_exemplars=200).write(StoryOptions(split="test", num_exemplars=k), seed=1)
    assert error.value.field == "options.num_exemplars"
    assert error.value.message == (
        f"{k} exemplars requested but pool 'storytelling_v1' has {k - 1} in split 'test'"
    )


async def test_cor_guided_story_has_full_provenance():
    engine = ScriptedEngine()
    story = await storyteller(engine).write(StoryOptions(theme="a harbour at dawn", temperature=0.5), seed=42)
    p = story.provenance
    assert story.text == SCENE and story.id.startswith("st-")
    assert (p.mode, p.prompt_version, p.pool, p.seed) == (
        Mode.COR_GUIDED,
        "cor-guided/1",
        "storytelling_v1",
        42,
    )
    assert len(p.exemplar_ids) == 3 and len(set(p.exemplar_ids)) == 3
    assert (p.engine.kind, p.engine.model) == ("scripted", "script")
    assert p.sampling.temperature == 0.5 and p.sampling.max_tokens == 320
    assert p.sampling.seed == derive_seed(42, "attempt", 0)
    assert p.rejected == () and p.prompt_tokens == 100 and p.completion_tokens > 0
    (messages, params) = engine.calls[0]
    prompt = messages[-1].content
    pool = {e.id: e for e in builtin_pools()[0].entries}
    assert all(pool[i].story in prompt for i in p.exemplar_ids)
    assert "a harbour at dawn" in prompt and "Mental state" in prompt and "Christmas" in prompt
    assert params == p.sampling


async def test_same_seed_same_exemplars_and_engine_seed_other_seed_differs():
    first = await storyteller().write(StoryOptions(), seed=7)
    again = await storyteller().write(StoryOptions(), seed=7)
    other = await storyteller().write(StoryOptions(), seed=8)
    assert first.provenance.exemplar_ids == again.provenance.exemplar_ids
    assert first.provenance.sampling == again.provenance.sampling
    assert first.provenance.exemplar_ids != other.provenance.exemplar_ids
    assert all(
        i in {e.id for e in builtin_pools()[0].candidates("train")} for i in first.provenance.exemplar_ids
    )


async def test_naive_mode_uses_no_exemplars():
    engine = ScriptedEngine()
    story = await storyteller(engine).write(StoryOptions(mode=Mode.NAIVE), seed=1)
    assert story.provenance.prompt_version == "naive/1"
    assert story.provenance.exemplar_ids == () and story.provenance.pool == ""
    assert "laundromat" in engine.calls[0][0][-1].content  # the worked example


@pytest.mark.parametrize("theme", ["", "a night train"])
async def test_short_mode_is_one_instruction_and_the_theme(theme):
    engine = ScriptedEngine()
    story = await storyteller(engine).write(StoryOptions(mode=Mode.SHORT, theme=theme), seed=1)
    assert story.provenance.prompt_version == "short/1" and story.provenance.exemplar_ids == ()
    system, user = engine.calls[0][0]
    assert system.role == "system" and user.role == "user"
    expected = "Write a description of a storytelling image."
    assert user.content == (f"{expected} Theme: {theme}" if theme else expected)


async def test_an_engine_can_default_to_another_mode_and_requests_still_choose():
    engine = ScriptedEngine()
    teller = Storyteller(
        {"mini": engine, "big": ScriptedEngine()},
        PoolRegistry(builtin_pools()),
        default_engine="mini",
        engine_modes={"mini": Mode.SHORT},
    )
    assert (await teller.write(StoryOptions(), seed=1)).provenance.prompt_version == "short/1"
    chosen = await teller.write(StoryOptions(mode=Mode.COR_GUIDED), seed=1)
    assert chosen.provenance.prompt_version == "cor-guided/1"
    other = await teller.write(StoryOptions(engine="big"), seed=1)
    assert other.provenance.prompt_version == "cor-guided/1"
    with pytest.raises(ValueError, match=r"engine modes name engines that are not configured: \['tiny'\]"):
        Storyteller(
            {"mini": engine},
            PoolRegistry(builtin_pools()),
            default_engine="mini",
            engine_modes={"tiny": Mode.SHORT},
        )


async def test_inline_pool_is_sampled_and_named_in_provenance():
    content = "img_id,story\n" + "".join(f'u{i},"User story number {i} about a market."\n' for i in range(5))
    story = await storyteller().write(
        StoryOptions(inline_pool=InlinePool("mine", content.encode()), num_exemplars=2)
    )
    assert story.provenance.pool == "mine"
    assert (
        all(i.startswith("u") for i in story.provenance.exemplar_ids)
        and len(story.provenance.exemplar_ids) == 2
    )


async def test_rejected_outputs_are_regenerated_with_fresh_seeds_and_recorded():
    engine = ScriptedEngine(
        [
            ("", "stop"),
            (SCENE[:60], "length"),
            (f"{SCENE} Moments later it rains.", "stop"),
            (f"Sure! Here is the scene:\n\n**{SCENE}**", "stop"),
        ]
    )
    story = await storyteller(engine).write(StoryOptions(), seed=5)
    assert story.text == SCENE
    assert [r.reason for r in story.provenance.rejected] == ["empty", "truncated", "multi_moment"]
    assert story.provenance.rejected[2].text.endswith("Moments later it rains.")
    seeds = [params.seed for _, params in engine.calls]
    assert seeds == [derive_seed(5, "attempt", i) for i in range(4)] and len(set(seeds)) == 4
    assert story.provenance.sampling.seed == seeds[-1]


async def test_when_attempts_run_out_the_first_salvageable_output_is_returned_and_says_so():
    engine = ScriptedEngine(
        [("", "stop"), (f"{SCENE} Then a cat jumps. Then it rains.", "stop"), (f"{SCENE} And the", "length")]
    )
    story = await storyteller(engine).write(StoryOptions(max_attempts=2), seed=5)
    assert len(engine.calls) == 3
    assert story.text == f"{SCENE} Then a cat jumps. Then it rains."
    reasons = [r.reason for r in story.provenance.rejected]
    assert reasons == ["empty", "truncated", "multi_moment"]
    assert story.provenance.rejected[-1].detail.startswith("returned anyway (no clean output in 3 attempts)")
    assert story.provenance.salvaged
    clean = await storyteller(ScriptedEngine()).write(StoryOptions(), seed=5)
    assert not clean.provenance.salvaged and clean.text == SCENE


async def test_the_default_mode_comes_from_the_service_settings():
    engine = ScriptedEngine()
    story = await storyteller(engine, mode=Mode.NAIVE).write(StoryOptions(), seed=1)
    assert story.provenance.prompt_version == "naive/1" and story.provenance.exemplar_ids == ()
    asked = await storyteller(engine, mode=Mode.NAIVE).write(StoryOptions(mode=Mode.COR_GUIDED), seed=1)
    assert asked.provenance.prompt_version == "cor-guided/1"


async def test_truncated_output_is_salvaged_to_full_sentences():
    engine = ScriptedEngine([(f"{SCENE} And behind the counter the", "length")])
    story = await storyteller(engine).write(StoryOptions(max_attempts=1), seed=5)
    assert story.text == SCENE and [r.reason for r in story.provenance.rejected] == ["truncated", "truncated"]


async def test_a_clean_cut_is_returned_at_once_when_the_service_accepts_cuts():
    engine = ScriptedEngine([(f"{SCENE} And behind the counter the", "length")])
    story = await storyteller(engine, accept_cut=True).write(StoryOptions(max_attempts=3), seed=5)
    assert len(engine.calls) == 1 and story.text == SCENE and story.provenance.salvaged
    assert [(r.reason, r.detail) for r in story.provenance.rejected] == [
        ("truncated", "returned at once, cut at its last complete sentence")
    ]
    rambling = ScriptedEngine(
        [(f"{SCENE} Then a cat jumps. Then it rains. And the", "length"), (SCENE, "stop")]
    )
    regenerated = await storyteller(rambling, accept_cut=True).write(StoryOptions(), seed=5)
    assert len(rambling.calls) == 2 and not regenerated.provenance.salvaged  # a cut that is multi-moment


async def test_no_salvageable_output_is_a_clear_error():
    engine = ScriptedEngine([("", "stop"), ("A boy falls.", "stop")])
    with pytest.raises(FailedPrecondition, match=r"in 4 attempts \(empty, too_short, too_short, too_short\)"):
        await storyteller(engine).write(StoryOptions(), seed=5)
    strict = ScriptedEngine([(f"{SCENE} Moments later the bell rings.", "stop")])
    with pytest.raises(FailedPrecondition, match="multi_moment"):
        await storyteller(strict, accept_salvaged=False).write(StoryOptions(max_attempts=1), seed=5)


async def test_write_many_is_bounded_derives_seeds_and_streams_every_index():
    engine = ScriptedEngine(delay_s=0.05)
    results = [
        item async for item in storyteller(engine, concurrency=3).write_many(StoryOptions(), 10, seed=9)
    ]
    assert sorted(i for i, _ in results) == list(range(10))
    assert engine.peak_in_flight == 3
    by_index = dict(results)
    assert by_index[4].provenance.seed == derive_seed(9, "story", 4)
    alone = await storyteller().write(StoryOptions(), seed=derive_seed(9, "story", 4))
    assert alone.provenance.exemplar_ids == by_index[4].provenance.exemplar_ids


@pytest.mark.parametrize("count", [0, 257])
async def test_write_many_count_out_of_range(count):
    with pytest.raises(InvalidArgument) as error:
        [item async for item in storyteller().write_many(StoryOptions(), count)]
    assert error.value.field == "count"


async def test_unseeded_requests_record_a_random_seed():
    # Naive mode: no exemplars, so a random draw can never include the scripted scene's own exemplar,
    # which the echo check would refuse.
    naive = StoryOptions(mode=Mode.NAIVE)
    a = await storyteller().write(naive)
    b = await storyteller().write(naive)
    assert a.provenance.seed != b.provenance.seed and 0 <= a.provenance.seed < 2**63
    sampled = await storyteller().write(StoryOptions(mode=Mode.NAIVE, sampling_seed=11))
    assert sampled.provenance.seed == 11


def test_derived_seeds_are_fixed_forever():
    """Recorded seeds must reproduce the same stories in later versions: the derivation cannot change."""
    attempts = [derive_seed(5, "attempt", i) for i in range(4)]
    assert attempts == [2904452437033559770, 8227859166260297948, 4647735721455890108, 6394204151617436384]
    assert derive_seed(9, "story", 4) == 6883133027226955640
