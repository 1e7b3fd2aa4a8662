"""Approximate nearest neighbours of every story among the others, for sets too large for exact search on
a CPU, with the recall measured against exact search on a sample.

Exact search is n^2 d: about 10 hours at n = 1M on two cores. The index here is faiss IVF-Flat: k-means
cells (nlist = 4 sqrt(n)) trained on a sample, every vector stored exactly in its cell, and each query
scans the `nprobe` cells nearest to it, so a query compares with about n nprobe / nlist vectors instead
of n. Similarities of the neighbours found are exact; only neighbours in cells that were not scanned
can be missed, which the recall measures: for a random sample of query rows, exact top k by a tiled
GEMM, and the share of the approximate neighbours at least as similar as the exact k-th (so ties with
equal similarity count as found).
"""

from dataclasses import dataclass
from math import isqrt

import numpy as np

from storytelling.evaluation.knn import DEFAULT_TILE_BYTES, Neighbours, knn

DEFAULT_NPROBE = 16
DEFAULT_RECALL_SAMPLE = 1000
# k-means on 20 points per cell: training is the largest cost after the search itself, and the cells only
# need to group near neighbours (faiss warns below 39 per cell; the measured recall is what matters).
TRAIN_POINTS_PER_CELL = 20
KMEANS_ITERATIONS = 10


@dataclass(frozen=True)
class ApproximateSearch:
    neighbours: Neighbours
    description: str  # "faiss-ivf(nlist=4000,nprobe=32)"
    recall: float
    recall_sample: int


def cells(n: int) -> int:
    """4 sqrt(n) cells, at least 8 rows each."""
    return int(min(max(4 * isqrt(n), 16), 65536, max(n // 8, 1)))


def approximate_self_knn(
    x: np.ndarray,
    k: int,
    *,
    nprobe: int = DEFAULT_NPROBE,
    recall_sample: int = DEFAULT_RECALL_SAMPLE,
    seed: int = 0,
    tile_bytes: int = DEFAULT_TILE_BYTES,
) -> ApproximateSearch:
    """Top-k other rows of every row of `x` (unit-norm float32), nearest first, and the measured recall."""
    import faiss

    n, d = x.shape
    nlist = cells(n)
    rng = np.random.default_rng(seed)
    train = x[np.sort(rng.choice(n, min(n, TRAIN_POINTS_PER_CELL * nlist), replace=False))]
    quantizer = faiss.IndexFlatIP(d)
    index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = KMEANS_ITERATIONS
    index.cp.seed = seed
    index.train(train)
    index.add(x)
    index.nprobe = min(nprobe, nlist)
    similarities, indices = index.search(x, k + 1)
    neighbours = _drop_self(similarities, indices, k)
    rows = np.sort(rng.choice(n, min(n, recall_sample), replace=False))
    return ApproximateSearch(
        neighbours=neighbours,
        description=f"faiss-ivf(nlist={nlist},nprobe={index.nprobe})",
        recall=recall(x, neighbours, rows, tile_bytes=tile_bytes),
        recall_sample=len(rows),
    )


def _drop_self(similarities: np.ndarray, indices: np.ndarray, k: int) -> Neighbours:
    """The k best of k + 1 results per row that are not the row itself (nor padding, index -1)."""
    n = len(indices)
    own = indices == np.arange(n)[:, None]
    keep = ~own & (indices >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept entries first, in rank order
    sims = np.take_along_axis(similarities, order, axis=1).astype(np.float32)
    idx = np.take_along_axis(indices, order, axis=1)
    missing = ~np.take_along_axis(keep, order, axis=1)
    sims[missing], idx[missing] = -np.inf, -1  # fewer than k candidates in the scanned cells
    return Neighbours(indices=idx, similarities=sims)


def recall(
    x: np.ndarray, found: Neighbours, rows: np.ndarray, *, tile_bytes: int = DEFAULT_TILE_BYTES
) -> float:
    """Share of the neighbours found for `rows` that are at least as similar as the exact k-th other row."""
    k = found.indices.shape[1]
    exact = knn(x, k + 1, queries=x[rows], tile_bytes=tile_bytes)
    # k + 1 so the query row itself (similarity 1) can be set aside; where a duplicate outranked it, the
    # k + 1 are all other rows and the k-th of them is still the exact k-th.
    others = np.where(exact.indices == rows[:, None], -np.inf, exact.similarities)
    kth = -np.sort(-others, axis=1)[:, k - 1]
    return float((found.similarities[rows] >= kth[:, None] - 1e-5).mean())
