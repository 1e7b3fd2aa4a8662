"""Novelty of stories against the exemplars they were conditioned on and against a story pool.

Exemplar novelty of a story: cosine distance (1 - cos) to the nearest of its own exemplars, so a story
that paraphrases one of its in-context examples scores near 0. Pool novelty: distance to the nearest
story of the whole pool. Memorisation: the largest cosine similarity to any pool story (1 - pool
novelty), reported with that story's id; at or above `threshold` the story is flagged as memorised.
For all-MiniLM-L6-v2, 0.9 is where two texts are near-copies: rewordings of one scene score 0.75-0.9,
different scenes of the same kind (two kitchens) 0.4-0.6.
"""

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from storytelling.evaluation.embedder import Embedder
from storytelling.api.pools import Pool

MEMORISATION_THRESHOLD = 0.9


@dataclass(frozen=True)
class NoveltyReport:
    exemplar_novelty: float | None  # None without exemplars
    exemplars: int
    pool_novelty: float
    memorisation: float
    nearest_pool_story: tuple[str, str]  # (pool, story id)
    memorised: bool
    threshold: float


class PoolEmbeddings:
    """Embeddings of every story of one pool, computed on first use and kept (pools do not change)."""

    def __init__(self, pool: Pool, embedder: Embedder) -> None:
        self.pool = pool
        self._embedder = embedder
        self._vectors: np.ndarray | None = None
        self._lock = threading.Lock()

    @property
    def vectors(self) -> np.ndarray:
        with self._lock:
            if self._vectors is None:
                self._vectors = self._embedder.encode([entry.story for entry in self.pool.entries])
            return self._vectors


def novelty(
    stories: np.ndarray,
    exemplars: Sequence[np.ndarray],
    pool: PoolEmbeddings,
    threshold: float = MEMORISATION_THRESHOLD,
) -> list[NoveltyReport]:
    """One report per row of `stories` (unit-norm embeddings); `exemplars[i]` holds story i's exemplar
    embeddings (zero rows: no exemplar novelty)."""
    reports = []
    for i, own in enumerate(exemplars):
        # One story against the pool at a time, in float64: the same story gets the same numbers whether it
        # is evaluated alone or in a set (a GEMM over several stories may round differently).
        similarity = pool.vectors.astype(np.float64) @ stories[i].astype(np.float64)
        nearest = int(similarity.argmax())
        memorisation = float(np.clip(similarity[nearest], -1.0, 1.0))
        closest = (own.astype(np.float64) @ stories[i].astype(np.float64)).max() if len(own) else None
        exemplar_novelty = None if closest is None else float(np.clip(1.0 - closest, 0.0, 2.0))
        reports.append(
            NoveltyReport(
                exemplar_novelty=exemplar_novelty,
                exemplars=len(own),
                pool_novelty=float(np.clip(1.0 - memorisation, 0.0, 2.0)),
                memorisation=memorisation,
                nearest_pool_story=(pool.pool.name, pool.pool.entries[nearest].id),
                memorised=memorisation >= threshold,
                threshold=threshold,
            )
        )
    return reports
