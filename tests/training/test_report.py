"""The report's headline, table and plots from constructed rows (the run itself is in test_end_to_end)."""

from dataclasses import replace

import pytest
from storytelling.training.report import Row, headline, markdown, plots, table

ROW = Row(
    storyteller="base",
    mode="short",
    prompts=4,
    acceptance=0.25,
    returned=4,
    coverage=2.0,
    diversity=0.5,
    vendi_score=3.0,
    novelty=0.4,
    max_train_similarity=0.6,
    memorised=0,
    distinct_2=0.8,
    repetition=0.05,
    words=90.0,
    alignment=None,
    complexity=None,
    image_side="not run: no painter configured (--render-address)",
)


def rows() -> list[Row]:
    result = []
    for storyteller, acceptance, coverage in (("base", 0.25, 2.0), ("sft", 0.5, 3.0), ("dpo", 0.75, 4.0)):
        for mode in ("naive", "cor-guided", "short"):
            result.append(
                replace(ROW, storyteller=storyteller, mode=mode, acceptance=acceptance, coverage=coverage)
            )
    return result


def test_the_headline_is_the_trained_model_with_its_prompt_over_the_base_with_each():
    lines = headline(rows())
    assert [h["base"] for h in lines] == ["base (naive/1)", "base (cor-guided/1)", "base (short/1)"]
    assert all(h["trained"] == "SFT+DPO (short/1)" for h in lines)
    assert lines[0]["acceptance"] == [0.75, 0.25, pytest.approx(3.0)]
    assert lines[0]["coverage"] == [4.0, 2.0, pytest.approx(2.0)]


def test_a_base_without_acceptance_has_no_ratio_and_the_markdown_says_why():
    zero = [replace(r, acceptance=0.0) if r.storyteller == "base" else r for r in rows()]
    assert headline(zero)[0]["acceptance"][2] is None
    info = {
        "command": "storytelling train report",
        "finished": "now",
        "machine": "here",
        "prompts": 4,
        "pool": "p",
        "max_tokens": 256,
        "temperature": 0.8,
        "seed": 0,
        "storytellers": {"base": "b", "sft": "s", "dpo": "d"},
        "generation_seconds": 1.0,
        "evaluation_seconds": 1.0,
    }
    text = markdown(zero, headline(zero), info)
    assert "acceptance n/a (base is 0) (75% vs 0%)" in text and "dimension coverage x2.00" in text
    assert "![acceptance.svg](acceptance.svg)" in text and "not run: no painter configured" in text


def test_table_and_plots_show_every_condition():
    lines = table(rows()).splitlines()
    assert len(lines) == 2 + 9
    assert lines[-1].startswith("| SFT+DPO | short/1 | 75% | 4/4 | 4.00 |")
    svg = plots(rows())
    assert set(svg) >= {"acceptance.svg", "coverage.svg", "memorisation.svg", "distinct2.svg", "novelty.svg"}
    assert svg["acceptance.svg"].count("<rect") == 3 + 9  # legend swatches and one bar per condition
    missing = plots([replace(r, coverage=None) for r in rows()])["coverage.svg"]
    assert missing.count("n/a") == 9
