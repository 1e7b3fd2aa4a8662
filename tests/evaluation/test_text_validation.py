"""The validation script prints per-dimension precision, recall and F1 on the labelled stories, and the
rules keep the goals on the validation set (macro F1 >= 0.85, every dimension >= 0.7)."""

import json
import subprocess
import sys
from pathlib import Path

from scripts.validate_text_measures import DATA, scores
from storytelling.evaluation.text_measures import TextMeasurer

ROOT = Path(__file__).resolve().parents[2]


def test_the_labelled_sets_are_large_enough_and_labelled_with_known_dimensions() -> None:
    known = {"time", "location", "character_role", "character_relationship", "event",
             "event_causal_relationship", "mental_state"}  # fmt: skip
    for name, least in (("text_validation.jsonl", 80), ("text_heldout.jsonl", 25)):
        rows = [json.loads(line) for line in (DATA.parent / name).read_text().splitlines()]
        assert len(rows) >= least and len({r["id"] for r in rows}) == len(rows)
        assert all(set(r["dimensions"]) <= known and r["story"].strip() for r in rows)


def test_validation_figures_meet_the_goals(embedder) -> None:
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    result, _ = scores(rows, TextMeasurer(embedder))
    f1 = {d: f for d, (_, _, f) in result.items()}
    assert sum(f1.values()) / len(f1) >= 0.85 and min(f1.values()) >= 0.7, f1


def test_the_script_prints_every_dimension_and_the_macro_f1() -> None:
    out = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "validate_text_measures.py"), "--data",
         str(DATA.parent / "text_heldout.jsonl")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    lines = out.stdout.splitlines()
    assert "on 28 stories of text_heldout.jsonl" in lines[0]
    assert [line.split()[0] for line in lines[2:9]] == [
        "time", "location", "character_role", "character_relationship", "event",
        "event_causal_relationship", "mental_state",
    ]  # fmt: skip
    assert lines[9].startswith("macro F1") and 0.0 <= float(lines[9].split()[-1]) <= 1.0
