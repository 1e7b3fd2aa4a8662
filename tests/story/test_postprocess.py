"""Output cleaning and the checks that decide whether an output can be a story."""

from __future__ import annotations

import pytest

from storytelling.story.postprocess import Rejection, check, clean

SCENE = (
    "In a crowded school canteen at noon, a dinner lady in a white cap has just dropped a tray of "
    "spaghetti onto the floor, while a small boy with tomato sauce on his shirt stares at her in shock "
    "and his sister covers her mouth to hide a laugh."
)


@pytest.mark.parametrize(
    "raw",
    [
        SCENE,
        f"Sure! Here's a description of a storytelling image:\n\n{SCENE}",
        f"Here is the story: {SCENE}",
        f"**Title: The Spaghetti Incident**\n\n{SCENE}",
        f"# The Spaghetti Incident\n\n{SCENE}",
        f"Story: {SCENE}",
        f'"{SCENE}"',
        f"```\n{SCENE}\n```",
        f"{SCENE}\n\nI hope you like this description!",
    ],
)
def test_clean_strips_wrappers(raw):
    assert clean(raw) == SCENE


def test_clean_removes_emphasis_and_keeps_paragraphs():
    assert clean("A **red** kite is *stuck*.\n\n\nA boy  cries.") == "A red kite is stuck.\n\nA boy cries."


def test_clean_keeps_inner_quotes_of_a_story_that_ends_in_speech():
    text = '"Look," a sign reads over the door, and a girl points at the word "Closed"'
    assert clean(text) == text


def test_clean_scene_passes():
    assert check(SCENE, "stop") is None


def test_empty_and_short_are_hard_rejections():
    empty = check("", "stop")
    assert empty.reason == "empty" and empty.salvage is None
    short = check("A boy falls off a bike.", "stop")
    assert short.reason == "too_short" and short.salvage is None
    assert short.detail == "6 words, fewer than 20"
    nineteen = " ".join(SCENE.split()[:18]) + " floor."
    assert check(nineteen, "stop").reason == "too_short"
    assert check(" ".join(SCENE.split()[:19]) + " floor.", "stop") is None


def test_truncated_is_salvaged_to_full_sentences_only_when_enough_remains():
    cut = check(f"{SCENE} Behind them the cook", "length")
    assert cut.reason == "truncated" and cut.salvage == SCENE
    hopeless = check("A boy on a stool reaches up for the jar of cookies while his", "length")
    assert hopeless.reason == "truncated" and hopeless.salvage is None


def test_truncated_multi_moment_output_is_salvaged_like_an_untruncated_one():
    rambling = f"{SCENE} After that, the boy runs away. Behind them the cook"
    cut = check(rambling, "length")
    assert cut.reason == "truncated"
    assert cut.salvage == f"{SCENE} After that, the boy runs away."
    assert check(cut.salvage, "stop").reason == "multi_moment"


@pytest.mark.parametrize(
    "marker",
    ["After that, the boy runs away.", "Moments later the teacher arrives.", "The next day it rains."],
)
def test_sequence_markers_are_multi_moment(marker):
    rejection = check(f"{SCENE} {marker}", "stop")
    assert rejection.reason == "multi_moment" and rejection.salvage == rejection.text


def test_one_then_is_a_scene_two_are_a_sequence():
    assert check(f"{SCENE} A cat, startled, then freezes under a chair.", "stop") is None
    rejection = check(f"{SCENE} Then a cat jumps. Then the lady slips.", "stop")
    assert rejection.reason == "multi_moment" and "then" in rejection.detail


def test_quoted_speech_is_dialogue():
    text = f'{SCENE} "Oh no!" she cries. "My shirt!" he answers.'
    assert check(text, "stop").reason == "dialogue"
    said = f'{SCENE} The boy said "sorry" quietly.'
    assert check(said, "stop").reason == "dialogue"
    assert check(f'{SCENE} A sign above the counter reads "Menu".', "stop") is None


def test_degenerate_repetition_is_rejected_and_salvaged_without_the_repeats():
    looping = f"{SCENE} They are sad. They are sad. They are sad. They are sad."
    rejection = check(looping, "stop")
    assert rejection.reason == "repetitive"
    assert "3 repeated sentence(s) of 5" in rejection.detail
    assert rejection.salvage == f"{SCENE} They are sad."
    assert check(f"{SCENE} They are sad.", "stop") is None


def test_two_repeated_sentences_are_repetitive_and_one_is_not():
    twice = check(f"{SCENE} They are sad. They are sad. They are sad.", "stop")
    assert twice.reason == "repetitive" and twice.detail == "2 repeated sentence(s) of 4"
    assert twice.salvage == f"{SCENE} They are sad."
    assert check(f"{SCENE} They are sad. They are sad.", "stop") is None


# Whole rejections, written out: reason, detail, the text checked and what could be salvaged.
SAD = "They are sad."
SEVENTEEN = " ".join(SCENE.split()[:16]) + " floor."  # one sentence of 17 words
TWENTY = " ".join(SCENE.split()[:19]) + " floor."  # one sentence of MIN_WORDS words


def test_empty_and_too_short_rejections_in_full():
    assert check("", "stop") == Rejection("empty", "the model returned no text after cleaning", "")
    short = "A boy falls off a bike."
    assert check(short, "stop") == Rejection("too_short", "6 words, fewer than 20", short)


def test_a_truncated_rejection_in_full_and_a_cut_of_exactly_min_words_is_kept():
    assert check(f"{SCENE} Behind them the cook", "length") == Rejection(
        "truncated", "the model hit max_tokens before finishing", f"{SCENE} Behind them the cook", SCENE
    )
    assert check(f"{TWENTY} Behind them the", "length").salvage == TWENTY


def test_a_truncated_output_whose_cut_cannot_be_salvaged_is_not_salvaged():
    looping = f"{SAD} " * 8 + "And the"  # the cut is 24 words of one repeated sentence
    rejection = check(looping, "length")
    assert (rejection.reason, rejection.salvage) == ("truncated", None)


def test_repetition_is_salvaged_only_when_what_is_left_is_long_enough_and_passes():
    looping = f"{SAD} " * 8
    assert check(looping.strip(), "stop") == Rejection(
        "repetitive", "7 repeated sentence(s) of 8", looping.strip(), None
    )
    exact = f"{SEVENTEEN} {SAD} {SAD} {SAD}"  # without repeats: 17 + 3 = 20 words
    assert check(exact, "stop").salvage == f"{SEVENTEEN} {SAD}"
    # Without its repeats it narrates a sequence: salvaged like any multi-moment story, repeats removed.
    rambling = f"{SCENE} After that, the boy runs away. {SAD} {SAD} {SAD}"
    assert check(rambling, "stop") == Rejection(
        "repetitive", "2 repeated sentence(s) of 5", rambling, f"{SCENE} After that, the boy runs away. {SAD}"
    )


def test_a_trailing_fragment_is_a_sentence_of_its_own():
    text = f"{SCENE} {SAD} {SAD} {SAD} Her tray lies   upside down"
    assert check(text, "stop") == Rejection(
        "repetitive", "2 repeated sentence(s) of 5", text, f"{SCENE} {SAD} Her tray lies upside down"
    )


def test_multi_moment_detail_lists_each_marker_once_in_lower_case():
    text = f"{SCENE} After that, the boy runs. Then a cat jumps. Then the lady slips. After that it rains."
    assert check(text, "stop") == Rejection(
        "multi_moment", "narrates a sequence of moments (after that, then)", text, text
    )


def test_dialogue_rejection_in_full():
    text = f'{SCENE} "Oh no!" she cries. "My shirt!" he answers.'
    assert check(text, "stop") == Rejection("dialogue", "2 quoted utterance(s), 19 of 283 chars", text, text)


def test_one_quotation_is_dialogue_only_above_a_fifth_of_the_text():
    fifth = f'{SCENE} A banner reads "Fresh bread, hot soup and a free dessert for every child today".'
    assert len(fifth) == 320  # the quotation with its marks: 64 characters, exactly a fifth
    assert check(fifth, "stop") is None
    more = f'{SCENE} A banner reads "Fresh bread, hot soup and a free dessert for every child today!".'
    assert check(more, "stop") == Rejection("dialogue", "1 quoted utterance(s), 65 of 321 chars", more, more)


def test_clean_removes_list_markers_and_unwraps_only_real_quotes():
    assert clean("1. A red kite is stuck.\n- A boy cries.\n* A dog barks.") == (
        "A red kite is stuck. A boy cries. A dog barks."
    )
    assert clean('""') == ""  # an empty quoted story is empty
    assert clean('"') == '"'  # a lone quote mark wraps nothing


PROMPT = (
    "Write a description of a storytelling image.\n"
    "Invent a new scene with different people, place and event than the examples."
)


def test_sentences_that_repeat_the_prompt_or_talk_about_the_task_are_salvaged_away():
    echo = f"{SCENE} Invent a new scene with different people, place and event than the examples."
    rejection = check(echo, "stop", PROMPT)
    assert rejection.reason == "prompt_echo" and rejection.salvage == SCENE
    assert "1 of 2 sentence(s) repeat the prompt" in rejection.detail
    meta = f"In the story above, a scene was envisioned with different people. {SCENE}"
    assert check(meta, "stop", PROMPT).salvage == SCENE
    assert check(SCENE, "stop", PROMPT) is None  # a scene sharing no six words with the prompt passes


def test_salvage_applies_every_repair_a_weak_output_needs():
    weak = (
        f"Invent a new scene with different people, place and event than the examples. {SCENE} "
        "They are sad. They are sad. They are sad. And behind them the"
    )
    rejection = check(weak, "length", PROMPT)
    assert rejection.reason == "truncated"
    assert rejection.salvage == f"{SCENE} They are sad."
    nothing_left = check(
        "Invent a new scene with different people, place and event than the examples.", "stop", PROMPT
    )
    assert nothing_left.reason == "too_short" and nothing_left.salvage is None


# A prompt with no words about the task: only the six-word shingles can find an echo of it.
HARBOUR_PROMPT = "Paint a harbour at dawn. The old lighthouse keeper waves hello to the boats."
HARBOUR_ECHO = "The old lighthouse keeper waves hello."  # exactly six words of the prompt, in order


def test_a_sentence_sharing_six_consecutive_words_with_the_prompt_is_an_echo():
    echo = f"{SCENE} {HARBOUR_ECHO}"
    rejection = check(echo, "stop", HARBOUR_PROMPT)
    assert rejection == Rejection(
        "prompt_echo", "1 of 2 sentence(s) repeat the prompt or talk about the task", echo, SCENE
    )
    assert check(f"{SCENE} The OLD Lighthouse keeper WAVES hello.", "stop", HARBOUR_PROMPT).salvage == SCENE
    five_words = f"{SCENE} The old lighthouse keeper waves."
    assert check(five_words, "stop", HARBOUR_PROMPT) is None
    assert check(echo, "stop") is None  # without the prompt, nothing to echo


def test_a_truncated_output_is_salvaged_without_its_prompt_echoes():
    truncated = f"{SCENE} {HARBOUR_ECHO} And then the"
    rejection = check(truncated, "length", HARBOUR_PROMPT)
    assert rejection.reason == "truncated" and rejection.salvage == SCENE
