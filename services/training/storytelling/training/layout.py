"""Where a training run keeps its files: the one owner of the run directory's layout.

<run>/data/sft.jsonl, sft.manifest.json          SFT examples and their provenance
<run>/sft/checkpoints/checkpoint-N/              trainer checkpoints (a rerun resumes from the last)
<run>/sft/adapter/  (LoRA) or <run>/sft/model/   the exported storyteller, with its model card
<run>/dpo/candidates.jsonl                       sampled stories with their scores
<run>/dpo/pairs.jsonl, pairs.manifest.json       preference pairs and their provenance
<run>/dpo/checkpoints/, <run>/dpo/adapter/       as for SFT
<run>/<stage>/metrics.json                       throughput and losses of a stage
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Stage = Literal["sft", "dpo"]


@dataclass(frozen=True)
class RunLayout:
    root: Path

    @property
    def sft_data(self) -> Path:
        return self.root / "data" / "sft.jsonl"

    @property
    def sft_manifest(self) -> Path:
        return self.root / "data" / "sft.manifest.json"

    @property
    def candidates(self) -> Path:
        return self.root / "dpo" / "candidates.jsonl"

    @property
    def pairs(self) -> Path:
        return self.root / "dpo" / "pairs.jsonl"

    @property
    def pairs_manifest(self) -> Path:
        return self.root / "dpo" / "pairs.manifest.json"

    def checkpoints(self, stage: Stage) -> Path:
        return self.root / stage / "checkpoints"

    def adapter(self, stage: Stage) -> Path:
        return self.root / stage / "adapter"

    def model(self, stage: Stage) -> Path:
        """The full fine-tuned model (the full-fine-tuning option)."""
        return self.root / stage / "model"

    def exported(self, stage: Stage) -> Path:
        """The adapter if the stage trained one, else the full model."""
        return (
            self.adapter(stage)
            if (self.adapter(stage) / "adapter_config.json").is_file()
            else self.model(stage)
        )

    def metrics(self, stage: Stage) -> Path:
        return self.root / stage / "metrics.json"
