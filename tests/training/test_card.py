"""Shipping an adapter: the stage's own weights with a card that describes that stage and its report rows."""

from pathlib import Path

import pytest
from storytelling.training import card
from storytelling.training.layout import RunLayout
from storytelling.training.records import write_json
from storytelling.training.report import headline
from tests.training.test_report import rows

OPTIM = {
    "learning_rate": 1e-4,
    "batch_size": 2,
    "grad_accum": 2,
    "epochs": 1.0,
    "max_length": 384,
    "seed": 0,
}
LORA = {"r": 8, "alpha": 16, "dropout": 0.05, "target_modules": "all-linear"}


def _stage(layout: RunLayout, stage: str, weights: bytes, **extra) -> None:
    adapter = layout.adapter(stage)
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "adapter_model.safetensors").write_bytes(weights)
    write_json(
        layout.metrics(stage),
        {
            "base": "SmolLM2",
            "base_id": "HuggingFaceTB/SmolLM2-135M-Instruct",
            "data_sha256": f"{stage}-data",
            "global_step": 8,
            "tokens_per_second": 10.0,
            "losses": [{"step": 8, "loss": 0.5}],
            "settings": {"model": {"lora": LORA}, "optim": OPTIM, "beta": 0.1},
            **extra,
        },
    )


@pytest.fixture
def run(tmp_path: Path) -> RunLayout:
    layout = RunLayout(tmp_path / "run")
    _stage(layout, "sft", b"sft weights", examples=250, data_manifest={"teacher": "pool:p/train"})
    _stage(layout, "dpo", b"dpo weights", pairs=29, pairs_manifest={"samples": 128})
    return layout


@pytest.fixture
def report() -> dict:
    return {"headline": headline(rows()), "rows": [r.__dict__ for r in rows()], "info": {}}


def test_the_final_stage_ships_by_default_with_its_dpo_card(run, report, tmp_path):
    target = card.ship(run, tmp_path / "shipped", "Mini", report)
    assert (target / "adapter_model.safetensors").read_bytes() == b"dpo weights"
    text = (target / "README.md").read_text()
    assert "- DPO: 29 pairs, sha256 `dpo-data`" in text and "tags: [lora, sft, dpo, " in text
    assert "Headline: SFT+DPO (short/1) over base (naive/1): acceptance x3.00, coverage x2.00." in text
    assert "- short prompt: stories accepted on the first try 75%" in text


def test_sft_ships_after_dpo_ran_without_a_word_of_dpo(run, report, tmp_path):
    target = card.ship(run, tmp_path / "shipped", "Mini", report, "sft")
    assert (target / "adapter_model.safetensors").read_bytes() == b"sft weights"
    text = (target / "README.md").read_text()
    assert "DPO" not in text and "dpo" not in text
    # Its own rows against the base; the report's headline is about SFT+DPO, so it is left out.
    assert "- naive prompt: stories accepted on the first try 50% vs 25% for the base" in text
    assert "Headline" not in text
    assert "python -m storytelling.training ship --run runs/train/offline --stage sft " in text


def test_a_stage_that_did_not_finish_is_refused(run, tmp_path):
    run.metrics("dpo").unlink()
    with pytest.raises(FileNotFoundError, match="stage: .*dpo/metrics.json is missing"):
        card.ship(run, tmp_path / "shipped", "Mini", None, "dpo")
    assert not (tmp_path / "shipped").exists()
