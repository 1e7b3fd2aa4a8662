"""Strict parsing and validation of extractor, VLM and judge outputs, and the bounded repair retry."""

import math
import re

import pytest

from storytelling.evaluation.complexity import parse_clues
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.jsonout import OutputError, OutputMode, parse_object
from storytelling.evaluation.judge import score_completion, word, yes_probability
from storytelling.evaluation.dimensions import DIMENSIONS
from storytelling.evaluation.keypoints import (
    SCHEMA,
    SENTENCE_PATTERN,
    ExtractionError,
    KeyPointExtractor,
    parse_key_points,
    sentence_errors,
)
from storytelling.llm import Completion, TokenLogprob
from tests.evaluation import recorded
from tests.evaluation.conftest import RecordedChatEngine


def test_good_key_points_parse_into_categories() -> None:
    points = parse_key_points(recorded.KEY_POINTS_GOOD)
    assert len(points) == 7
    assert [p.dimension for p in points].count(Dimension.EVENT) == 2
    assert not [p for p in points if p.dimension is Dimension.CHARACTER_ROLE]  # a category may be empty
    assert points[0].text == "There is a decorated Christmas tree in the corner."


def test_a_single_code_fence_is_accepted() -> None:
    assert parse_key_points(recorded.KEY_POINTS_FENCED) == parse_key_points(recorded.KEY_POINTS_GOOD)


@pytest.mark.parametrize(
    "raw, expected",
    [
        (recorded.KEY_POINTS_PROSE, "not valid JSON"),
        (recorded.SMOLLM2_KEY_POINTS, "not valid JSON"),
        (recorded.KEY_POINTS_TRUNCATED, "not valid JSON"),
        (recorded.KEY_POINTS_LIST, "expected a JSON object"),
        (recorded.KEY_POINTS_EMPTY, "no key points"),
        ("", "empty"),
    ],
)
def test_broken_outputs_are_rejected_with_a_reason(raw: str, expected: str) -> None:
    with pytest.raises(OutputError, match=expected):
        parse_key_points(raw)


def test_every_invalid_key_point_is_reported() -> None:
    with pytest.raises(OutputError) as caught:
        parse_key_points(recorded.KEY_POINTS_BAD_SENTENCES)
    errors = " | ".join(caught.value.errors)
    assert "unknown category 'weather'" in errors
    assert "event[0] 'he steals cookies.' does not start with a capital letter" in errors
    assert "starts with the pronoun 'he'" in errors
    assert "event[1] 'The boy climbs. The stool tips.' is more than one sentence" in errors
    assert "event[2] 'Cookies' has 1 words" in errors
    assert "mental_state[0] 'She looks distracted.' starts with the pronoun 'She'" in errors


@pytest.mark.parametrize(
    "sentence, ok",
    [
        ("There is a boy holding a box of cookies.", True),
        ("Mr. Brown is sweeping the shop floor.", True),
        ("It is Christmas morning.", False),  # names no subject
        ("A boy falls", False),
        ("A boy falls off a bike! A dog barks.", False),
    ],
)
def test_sentence_rules(sentence: str, ok: bool) -> None:
    assert (not sentence_errors(sentence)) is ok


def test_object_parsing_is_strict() -> None:
    assert parse_object(' {"a": 1} ') == {"a": 1}
    with pytest.raises(OutputError):
        parse_object('{"a": 1} and more')


async def test_repair_retry_sends_the_errors_back_and_keeps_every_attempt() -> None:
    llm = RecordedChatEngine([recorded.KEY_POINTS_PROSE, recorded.KEY_POINTS_GOOD])
    extraction = await KeyPointExtractor(llm, max_repairs=1).extract("A boy steals cookies.")
    assert len(extraction.key_points) == 7
    assert extraction.raw == recorded.KEY_POINTS_GOOD
    assert [a.raw for a in extraction.attempts] == [recorded.KEY_POINTS_PROSE]
    repair = llm.conversations[1]
    assert repair[-2].role == "assistant" and repair[-2].content == recorded.KEY_POINTS_PROSE
    assert "not valid JSON" in repair[-1].content


async def test_repair_is_bounded() -> None:
    llm = RecordedChatEngine([recorded.KEY_POINTS_TRUNCATED])
    with pytest.raises(ExtractionError) as caught:
        await KeyPointExtractor(llm, max_repairs=2).extract("A boy steals cookies.")
    assert len(llm.conversations) == 3 and len(caught.value.attempts) == 3


def test_the_schema_asks_for_the_seven_categories_and_nothing_else() -> None:
    schema = SCHEMA.schema
    assert schema["required"] == [d.value for d in DIMENSIONS] == list(schema["properties"])
    assert schema["additionalProperties"] is False


def test_the_schema_sentence_pattern_admits_good_key_points_and_refuses_broken_ones() -> None:
    for point in parse_key_points(recorded.KEY_POINTS_GOOD):
        assert re.search(SENTENCE_PATTERN, point.text), point.text
    broken = (
        "a boy is reaching into a cookie jar.",  # no capital
        "A boy is reaching into a cookie jar",  # no full stop
        "A boy reaches. The jar falls over.",  # two sentences
        "Boy reaching.",  # two words
        "A boy " + "very " * 20 + "tall reaches up.",  # longer than the schema allows
    )
    for text in broken:
        assert not re.search(SENTENCE_PATTERN, text), text
    assert all(sentence_errors(text) for text in broken[:4])  # what the schema shares with validation


async def test_json_schema_mode_constrains_every_attempt_and_names_the_schema_in_its_version() -> None:
    llm = RecordedChatEngine([recorded.KEY_POINTS_PROSE, recorded.KEY_POINTS_GOOD])
    extractor = KeyPointExtractor(llm, mode=OutputMode.JSON_SCHEMA)
    await extractor.extract("A boy steals cookies.")
    assert [p.json_schema for p in llm.params] == [SCHEMA, SCHEMA]  # the repair too
    assert extractor.prompt_version == "keypoints/1+key_points_v1"
    parsed = KeyPointExtractor(llm)
    assert parsed.params.json_schema is None and parsed.prompt_version == "keypoints/1"


def test_clues_parse_and_reject() -> None:
    clues = parse_clues(recorded.CLUES_GOOD)
    assert [c.dimension for c in clues][:2] == [Dimension.TIME, Dimension.MENTAL_STATE]
    assert clues[3].inference == ""
    with pytest.raises(OutputError) as caught:
        parse_clues(recorded.CLUES_BAD)
    assert any("'weather' is not one of" in e for e in caught.value.errors)
    with pytest.raises(OutputError):
        parse_clues('{"clues": [], "notes": "none"}')


def test_yes_probability_sums_spellings_and_normalises_over_yes_and_no() -> None:
    top = {alt["token"]: alt["logprob"] for alt in recorded.VLLM_YES_POSITION["top_logprobs"]}
    yes = math.exp(-0.105) + math.exp(-4.6) + math.exp(-5.3)
    assert yes_probability(top) == pytest.approx(yes / (yes + math.exp(-2.41)))
    assert yes_probability({"▁No": 0.0, "Ġno": -1.0}) == 0.0
    assert yes_probability({"The": -0.1, "A": -2.0}) is None


@pytest.mark.parametrize(
    "token, expected", [(" Yes", "yes"), ("▁YES", "yes"), ("Ġno", "no"), ("No.", "no"), ("\n", "")]
)
def test_token_words(token: str, expected: str) -> None:
    assert word(token) == expected


def _completion(text: str, logprobs: list[TokenLogprob] | None) -> Completion:
    return Completion(text, "stop", 10, 2, "judge", logprobs)


def test_score_from_logprobs_skips_leading_whitespace_tokens() -> None:
    positions = [
        TokenLogprob("\n", -0.01, {"\n": -0.01}),
        TokenLogprob("No", -0.2, {"No": -0.2, "Yes": -1.8}),
    ]
    score, from_logprobs = score_completion(_completion("\nNo", positions))
    assert from_logprobs and score == pytest.approx(math.exp(-1.8) / (math.exp(-1.8) + math.exp(-0.2)))


@pytest.mark.parametrize(
    "text, expected", [("Yes.", 1.0), ("yes, there is", 1.0), ("No", 0.0), ("I cannot tell", 0.0), ("", 0.0)]
)
def test_score_without_logprobs_is_one_or_zero(text: str, expected: float) -> None:
    assert score_completion(_completion(text, None)) == (expected, False)


def test_score_falls_back_to_text_when_neither_word_is_in_the_alternatives() -> None:
    positions = [TokenLogprob("Yes", -3.0, {"Maybe": -0.1, "Perhaps": -1.0})]
    assert score_completion(_completion("Yes", positions)) == (1.0, False)
