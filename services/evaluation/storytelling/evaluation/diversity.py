"""KNN diversity, novelty against a reference pool, and the Vendi score of a set of stories.

Diversity of story i: mean cosine distance (1 - cos) to its k nearest other stories; of the set: the
mean over stories. k is clipped to n - 1. Novelty of story i: cosine distance to its nearest reference
story (the in-context exemplars), so a paraphrase of an exemplar scores near 0. Vendi score: the
effective number of distinct stories, in [1, n]. Distinct-2 (lexical, from the texts) is
`lexical.distinct_n`, filled in by the caller that has the texts.

Search: exact (tiled GEMM, `knn`) by default, on a CPU as on a GPU. On a CPU, a set larger than
`approximate_above` uses the approximate index of `ann` instead and reports its measured recall.
"""

from dataclasses import dataclass

import numpy as np

from storytelling.evaluation.ann import DEFAULT_NPROBE, DEFAULT_RECALL_SAMPLE, approximate_self_knn
from storytelling.evaluation.knn import DEFAULT_TILE_BYTES, knn, normalize, vendi_score

DEFAULT_K = 5


@dataclass(frozen=True)
class DiversityReport:
    diversity: float
    per_story: np.ndarray
    k: int
    vendi_score: float
    novelty: float | None = None
    per_story_novelty: np.ndarray | None = None
    search: str = "exact"
    recall: float | None = None  # measured recall@k of an approximate search
    recall_sample: int = 0
    distinct_2: float = 0.0


def clip_k(k: int, n: int) -> int:
    """k actually used for a set of n stories: at most n - 1 other stories exist."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if n < 2:
        raise ValueError(f"diversity needs at least 2 stories, got {n}")
    return min(k, n - 1)


def diversity(
    embeddings: np.ndarray,
    k: int = DEFAULT_K,
    *,
    reference: np.ndarray | None = None,
    tile_bytes: int = DEFAULT_TILE_BYTES,
    device: str = "cpu",
    approximate_above: int | None = None,
    nprobe: int = DEFAULT_NPROBE,
    recall_sample: int = DEFAULT_RECALL_SAMPLE,
) -> DiversityReport:
    x = normalize(embeddings)
    k = clip_k(k, len(x))
    search, measured, sample = "exact", None, 0
    if approximate_above is not None and len(x) > approximate_above and device == "cpu":
        found = approximate_self_knn(x, k, nprobe=nprobe, recall_sample=recall_sample, tile_bytes=tile_bytes)
        near, search, measured, sample = (
            found.neighbours,
            found.description,
            found.recall,
            found.recall_sample,
        )
    else:
        near = knn(x, k, tile_bytes=tile_bytes, device=device)
    per_story = _distance(near.similarities).mean(axis=1)
    novelty = per_novelty = None
    if reference is not None and len(reference):
        nearest = knn(normalize(reference), 1, queries=x, tile_bytes=tile_bytes, device=device)
        per_novelty = _distance(nearest.similarities[:, 0])
        novelty = float(per_novelty.mean())
    return DiversityReport(
        diversity=float(per_story.mean()),
        per_story=per_story,
        k=k,
        vendi_score=vendi_score(x),
        novelty=novelty,
        per_story_novelty=per_novelty,
        search=search,
        recall=measured,
        recall_sample=sample,
    )


def _distance(similarity: np.ndarray) -> np.ndarray:
    return np.clip(1.0 - similarity.astype(np.float64), 0.0, 2.0)
