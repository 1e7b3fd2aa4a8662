"""Result types shared by the evaluators."""

from dataclasses import dataclass

from storytelling.evaluation.dimensions import Dimension


@dataclass(frozen=True)
class DimensionScore:
    dimension: Dimension
    score: float
    count: int  # key points or clues that contributed
