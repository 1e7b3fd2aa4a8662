"""The preference-pair builder on constructed scores."""

import pytest
from storytelling.training.pairs import Scored, build_pairs


def scored(prompt: str, *scores: float) -> list[Scored]:
    return [Scored(prompt, i, f"{prompt} story {i}", s) for i, s in enumerate(scores)]


def test_best_against_worst_then_inwards():
    pairs = build_pairs(scored("p", 0.2, 0.9, 0.5, 0.7, 0.1), margin=0.0, per_prompt=2)
    assert [(p.chosen.index, p.rejected.index) for p in pairs] == [(1, 4), (3, 0)]
    assert [round(p.margin, 2) for p in pairs] == [0.8, 0.5]


def test_margin_drops_pairs_the_reward_cannot_tell_apart():
    samples = scored("p", 0.50, 0.55, 0.60, 0.95)
    (pair,) = build_pairs(samples, margin=0.3, per_prompt=2)  # 0.95-0.50 kept; 0.60-0.55 dropped
    assert (pair.chosen.index, pair.rejected.index) == (3, 0)
    assert build_pairs(samples, margin=0.5, per_prompt=2) == []


def test_pairs_stay_within_their_prompt():
    pairs = build_pairs(scored("a", 0.9, 0.1) + scored("b", 0.3, 0.8), margin=0.1)
    assert {(p.prompt_id, p.chosen.text, p.rejected.text) for p in pairs} == {
        ("a", "a story 0", "a story 1"),
        ("b", "b story 1", "b story 0"),
    }


def test_identical_texts_are_never_paired_and_ties_break_by_sample_order():
    same = [Scored("p", 0, "the same", 0.9), Scored("p", 1, "the same ", 0.1)]
    assert build_pairs(same, margin=0.0) == []
    tie = build_pairs(scored("p", 0.5, 0.5, 0.5), margin=0.0)
    assert [(p.chosen.index, p.rejected.index) for p in tie] == [(0, 2)]


def test_a_single_sample_makes_no_pair_and_odd_counts_leave_the_middle_out():
    assert build_pairs(scored("p", 0.9), margin=0.0) == []
    pairs = build_pairs(scored("p", 0.9, 0.5, 0.1), margin=0.0, per_prompt=5)
    assert [(p.chosen.index, p.rejected.index) for p in pairs] == [(0, 2)]


@pytest.mark.parametrize(("margin", "per_prompt", "field"), [(-0.1, 1, "margin"), (0.1, 0, "per_prompt")])
def test_bad_settings_name_the_field(margin, per_prompt, field):
    with pytest.raises(ValueError, match=f"^{field}:"):
        build_pairs(scored("p", 0.1, 0.9), margin=margin, per_prompt=per_prompt)
