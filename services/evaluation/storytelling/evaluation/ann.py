"""Approximate nearest neighbours of every story among the others, for sets too large for exact search on
a CPU, with the recall measured against exact search on a sample.

Exact search is n^2 d: about 10 hours at n = 1M on two cores. The index here is an inverted file (IVF):
spherical k-means cells (nlist = 2 sqrt(n)) trained on a sample, and each story compared only with the
stories of the `nprobe` cells whose centroids are nearest to it, so with about n nprobe / nlist stories
instead of n. Similarities of the neighbours found are exact; only neighbours in cells that were not
scanned can be missed, which the recall measures: for a random sample of query rows, exact top k by a
tiled GEMM, and the share of the approximate neighbours at least as similar as the exact k-th (so ties
with equal similarity count as found).

Why not faiss's IVF (used here before): it scans each query's cells one query at a time, which on a CPU
is bound by memory: 1.4 G multiply-adds per CPU-second measured on our machine, so 1M stories at nlist
4000, nprobe 16 needed about 18 CPU-minutes for the search alone, plus 5 for training and adding with its
OpenBLAS. Here every query of the set is known in advance, so the scan is turned around: for each cell,
all the queries that probe it are compared with its stories in one GEMM (torch: 42 G multiply-adds per
CPU-second in float32), keeping each query's top k + 1 per cell. Same kind of cells and probes as a
per-query IVF, and the same neighbours for given centroids; about 3 CPU-minutes in all at 1M.
"""

from dataclasses import dataclass
from math import isqrt

import numpy as np
import torch

from storytelling.evaluation.knn import DEFAULT_TILE_BYTES, Neighbours, knn

DEFAULT_NPROBE = 16
DEFAULT_RECALL_SAMPLE = 1000
# k-means on 20 points per cell, 10 iterations: the cells only need to group near neighbours, and the
# measured recall is what says whether they did.
TRAIN_POINTS_PER_CELL = 20
KMEANS_ITERATIONS = 10


@dataclass(frozen=True)
class ApproximateSearch:
    neighbours: Neighbours
    description: str  # "ivf(nlist=2000,nprobe=16)"
    recall: float
    recall_sample: int


def cells(n: int) -> int:
    """2 sqrt(n) cells (2000 of about 500 rows at 1M), at least 8 rows each.

    Cost is n nlist d to assign the rows plus n nprobe (n / nlist) d to scan. Fewer, larger cells than the
    usual 4 sqrt(n) mean fewer, larger GEMMs, and at 1M the scanned share (nprobe / nlist) that reaches a
    given recall was no larger: measured on story-like vectors, recall@5 0.9966 at nlist 2000 nprobe 4
    against 0.9814 at nlist 4000 nprobe 4, and 1.0 at nlist 2000 nprobe 8. nprobe 16 (the default) keeps
    recall above 0.95 down to the 50k threshold, where the vectors are sparser: 0.979 at 50k, 0.992 at
    100k (nprobe 8: 0.960, 0.986).
    """
    return int(min(max(2 * isqrt(n), 16), 65536, max(n // 8, 1)))


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
    n = len(x)
    nlist = cells(n)
    nprobe = min(nprobe, nlist)
    rng = np.random.default_rng(seed)
    xt = torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32))
    with torch.inference_mode():
        generator = torch.Generator().manual_seed(seed)
        centroids = spherical_kmeans(xt, nlist, generator=generator, tile_bytes=tile_bytes)
        probes = nearest_centroids(xt, centroids, nprobe, tile_bytes=tile_bytes)
        neighbours = scan(xt, probes, nlist, k, tile_bytes=tile_bytes)
    rows = np.sort(rng.choice(n, min(n, recall_sample), replace=False))
    return ApproximateSearch(
        neighbours=neighbours,
        description=f"ivf(nlist={nlist},nprobe={nprobe})",
        recall=recall(x, neighbours, rows, tile_bytes=tile_bytes),
        recall_sample=len(rows),
    )


def spherical_kmeans(
    x: torch.Tensor,
    nlist: int,
    *,
    generator: torch.Generator,
    iterations: int = KMEANS_ITERATIONS,
    tile_bytes: int = DEFAULT_TILE_BYTES,
) -> torch.Tensor:
    """`nlist` unit-norm centroids of a sample of the rows (TRAIN_POINTS_PER_CELL per cell); a cell left
    empty takes a random sample row, so that every centroid stays a point of the data."""
    n = len(x)
    sample = x[torch.randperm(n, generator=generator)[: min(n, TRAIN_POINTS_PER_CELL * nlist)]]
    centroids = sample[torch.randperm(len(sample), generator=generator)[:nlist]].clone()
    for _ in range(iterations):
        assigned = nearest_centroids(sample, centroids, 1, tile_bytes=tile_bytes)[:, 0]
        sums = torch.zeros_like(centroids).index_add_(0, assigned, sample)
        empty = torch.bincount(assigned, minlength=nlist) == 0
        sums[empty] = sample[torch.randint(len(sample), (int(empty.sum()),), generator=generator)]
        centroids = torch.nn.functional.normalize(sums, dim=1)
    return centroids


def nearest_centroids(
    x: torch.Tensor, centroids: torch.Tensor, count: int, *, tile_bytes: int = DEFAULT_TILE_BYTES
) -> torch.Tensor:
    """(n, count) the `count` centroids of largest inner product with each row, nearest first."""
    rows = max(tile_bytes // (4 * len(centroids)), 1)
    out = torch.empty((len(x), count), dtype=torch.int64)
    for start in range(0, len(x), rows):
        out[start : start + rows] = torch.topk(x[start : start + rows] @ centroids.T, count, dim=1).indices
    return out


def scan(x: torch.Tensor, probes: torch.Tensor, nlist: int, k: int, *, tile_bytes: int) -> Neighbours:
    """Top-k other rows of each row among the rows of the cells it probes.

    A row's cell is its nearest centroid, `probes[:, 0]`. The (row, probed cell) pairs are sorted by cell,
    so that each cell's queries are one contiguous run: per cell and tile, one GEMM of the queries against
    the cell's rows, whose top k + 1 land in that run of a candidate buffer (n nprobe (k + 1) entries). A
    few large operations per cell, no per-query merging: on a busy machine every parallel operation waits
    for both cores, so their number matters as much as their size. The row itself is one of its own
    candidates (similarity 1) and is dropped at the end.
    """
    width = k + 1
    own_cell = probes[:, 0]
    members_order = torch.argsort(own_cell, stable=True)
    member_bounds = _bounds(torch.bincount(own_cell, minlength=nlist))
    flat_cells = probes.reshape(-1)
    probe_order = torch.argsort(flat_cells, stable=True)
    query_of_probe = probe_order // probes.shape[1]
    probe_bounds = _bounds(torch.bincount(flat_cells, minlength=nlist))
    cand_sim = torch.full((len(flat_cells), width), -torch.inf)
    cand_idx = torch.full((len(flat_cells), width), -1, dtype=torch.int32)
    for cell in range(nlist):
        m0, m1 = member_bounds[cell], member_bounds[cell + 1]
        if m0 == m1:
            continue
        members = members_order[m0:m1]
        block = x.index_select(0, members).T
        take = min(width, len(members))
        rows = max(tile_bytes // (4 * len(members)), 1)
        p0, p1 = probe_bounds[cell], probe_bounds[cell + 1]
        for t0 in range(p0, p1, rows):
            t1 = min(t0 + rows, p1)
            top_sim, top_pos = torch.topk(x.index_select(0, query_of_probe[t0:t1]) @ block, take, dim=1)
            cand_sim[t0:t1, :take] = top_sim
            cand_idx[t0:t1, :take] = members.take(top_pos).to(torch.int32)
    return _merge(cand_sim, cand_idx, probe_order, probes.shape[1], k, tile_bytes=tile_bytes)


def _merge(
    cand_sim: torch.Tensor,
    cand_idx: torch.Tensor,
    probe_order: torch.Tensor,
    nprobe: int,
    k: int,
    *,
    tile_bytes: int,
) -> Neighbours:
    """Each row's k best candidates over the cells it probed, itself excluded."""
    n, width = len(probe_order) // nprobe, cand_sim.shape[1]
    position = torch.empty_like(probe_order)
    position[probe_order] = torch.arange(len(probe_order))  # (row, j-th probe) -> its run in the buffer
    position = position.reshape(n, nprobe)
    sims = np.empty((n, k), dtype=np.float32)
    idx = np.empty((n, k), dtype=np.int64)
    rows = max(tile_bytes // (12 * nprobe * width), 1)
    for start in range(0, n, rows):
        at = position[start : start + rows].reshape(-1)
        s = cand_sim[at].reshape(-1, nprobe * width)
        i = cand_idx[at].reshape(-1, nprobe * width)
        best, pos = torch.topk(s, width, dim=1)
        chosen = _drop_self(best.numpy(), torch.gather(i, 1, pos).numpy(), start, k)
        sims[start : start + len(best)], idx[start : start + len(best)] = chosen
    return Neighbours(indices=idx, similarities=sims)


def _drop_self(
    similarities: np.ndarray, indices: np.ndarray, first_row: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The k best of k + 1 candidates per row that are not the row itself (nor padding, index -1)."""
    rows = first_row + np.arange(len(indices))
    keep = (indices != rows[:, None]) & (indices >= 0)
    order = np.argsort(~keep, axis=1, kind="stable")[:, :k]  # kept entries first, in rank order
    sims = np.take_along_axis(similarities, order, axis=1).astype(np.float32)
    idx = np.take_along_axis(indices, order, axis=1).astype(np.int64)
    missing = ~np.take_along_axis(keep, order, axis=1)
    sims[missing], idx[missing] = -np.inf, -1  # fewer than k other rows in the scanned cells
    return sims, idx


def _bounds(counts: torch.Tensor) -> list[int]:
    """Start offsets of consecutive groups of the given sizes, and the end."""
    return [0, *torch.cumsum(counts, 0).tolist()]


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
