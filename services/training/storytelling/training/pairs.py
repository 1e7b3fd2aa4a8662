"""Preference pairs from scored samples: per prompt, the best against the worst, the second best against
the second worst, and so on, keeping a pair only when the scores differ by at least the margin.

Pairing from both ends gives the widest gaps first; the margin drops pairs whose order the reward cannot
tell apart (ties, noise), which DPO would otherwise learn as if they were preferences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import groupby


@dataclass(frozen=True)
class Scored:
    prompt_id: str
    index: int  # the sample's position among its prompt's samples (stable tie-break)
    text: str
    score: float


@dataclass(frozen=True)
class Pair:
    prompt_id: str
    chosen: Scored
    rejected: Scored

    @property
    def margin(self) -> float:
        return self.chosen.score - self.rejected.score


def build_pairs(samples: Sequence[Scored], *, margin: float, per_prompt: int = 1) -> list[Pair]:
    if margin < 0:
        raise ValueError(f"margin: must be >= 0, got {margin}")
    if per_prompt < 1:
        raise ValueError(f"per_prompt: must be >= 1, got {per_prompt}")
    pairs = []
    ordered = sorted(samples, key=lambda s: s.prompt_id)
    for prompt_id, group in groupby(ordered, key=lambda s: s.prompt_id):
        distinct: dict[str, Scored] = {}
        for sample in sorted(group, key=lambda s: s.index):
            distinct.setdefault(sample.text.strip(), sample)  # identical texts cannot be preferred
        ranked = sorted(distinct.values(), key=lambda s: (-s.score, s.index))
        for rank in range(min(per_prompt, len(ranked) // 2)):
            chosen, rejected = ranked[rank], ranked[-1 - rank]
            if chosen.score - rejected.score < margin:
                break  # inner pairs are closer still
            pairs.append(Pair(prompt_id, chosen, rejected))
    return pairs
