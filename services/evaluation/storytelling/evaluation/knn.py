"""Exact cosine k-nearest-neighbour search and the Vendi score, in bounded memory.

The similarity matrix of n stories is n x n: 4 TB of float32 at n = 1,000,000, so it is never held.
Queries and corpus are cut into tiles of at most `tile_bytes`; each tile is one float32 GEMM whose
per-row top k is merged into a running top k. Memory is O(n d + tile + n k), time the n^2 d GEMM plus an
O(n^2) selection. Selection uses `torch.topk` rather than `numpy.argpartition`: on a 4096 x 16384 tile
argpartition took 3.5x the tile's GEMM on a 2-core machine, topk a quarter of it. The same code runs
on a CUDA device when one is given.
"""

from dataclasses import dataclass
from math import isqrt

import numpy as np
import torch

DEFAULT_TILE_BYTES = 256 << 20


@dataclass(frozen=True)
class Neighbours:
    """Top-k neighbours per query row, nearest first."""

    indices: np.ndarray  # (q, k) int64 rows of the corpus
    similarities: np.ndarray  # (q, k) float32 cosine similarities


def normalize(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm, as float32; all-zero rows stay zero."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(norms > 0, norms, 1.0)


def knn(
    corpus: np.ndarray,
    k: int,
    *,
    queries: np.ndarray | None = None,
    tile_bytes: int = DEFAULT_TILE_BYTES,
    device: str = "cpu",
) -> Neighbours:
    """Exact top-k by inner product of unit-norm rows (cosine similarity).

    Without `queries` the corpus is searched against itself and row i is never its own neighbour (an
    identical story elsewhere in the set still is, at distance 0).
    """
    exclude_self = queries is None
    nq, nc = len(corpus if queries is None else queries), len(corpus)
    available = nc - 1 if exclude_self else nc
    if not 1 <= k <= available:
        raise ValueError(f"k must be in [1, {available}], got {k}")
    elements = max(tile_bytes // 4, 1)
    q_rows = min(nq, max(isqrt(elements), 1))
    c_rows = min(nc, max(elements // q_rows, 1))

    dev = torch.device(device)
    corpus_t = torch.as_tensor(np.ascontiguousarray(corpus, dtype=np.float32)).to(dev)
    queries_t = (
        corpus_t
        if queries is None
        else torch.as_tensor(np.ascontiguousarray(queries, dtype=np.float32)).to(dev)
    )
    out_sim = np.empty((nq, k), dtype=np.float32)
    out_idx = np.empty((nq, k), dtype=np.int64)
    with torch.inference_mode():
        for q0 in range(0, nq, q_rows):
            q = queries_t[q0 : q0 + q_rows]
            best_sim = torch.full((len(q), k), -torch.inf, device=dev)
            best_idx = torch.full((len(q), k), -1, dtype=torch.int64, device=dev)
            for c0 in range(0, nc, c_rows):
                sim = q @ corpus_t[c0 : c0 + c_rows].T
                if exclude_self:
                    _mask_self(sim, q0, c0)
                top_sim, top_idx = torch.topk(sim, min(k, sim.shape[1]), dim=1)
                cand_sim = torch.cat([best_sim, top_sim], dim=1)
                cand_idx = torch.cat([best_idx, top_idx + c0], dim=1)
                best_sim, pos = torch.topk(cand_sim, k, dim=1)
                best_idx = torch.gather(cand_idx, 1, pos)
            out_sim[q0 : q0 + len(q)] = best_sim.cpu().numpy()
            out_idx[q0 : q0 + len(q)] = best_idx.cpu().numpy()
    return Neighbours(indices=out_idx, similarities=out_sim)


def _mask_self(sim: torch.Tensor, q0: int, c0: int) -> None:
    """Sets sim[i, j] = -inf where query q0 + i is corpus row c0 + j."""
    lo, hi = max(q0, c0), min(q0 + sim.shape[0], c0 + sim.shape[1])
    if lo < hi:
        rows = torch.arange(lo, hi, device=sim.device)
        sim[rows - q0, rows - c0] = -torch.inf


def vendi_score(x: np.ndarray, *, block_rows: int = 65536) -> float:
    """exp(entropy of the eigenvalues of K / n), K the cosine-similarity matrix of the rows of x.

    K / n = X X^T / n shares its non-zero eigenvalues with X^T X / n, so for n > d the d x d matrix is
    decomposed instead (accumulated in float64 over row blocks): O(n d^2) time and O(d^2) memory.
    """
    x = normalize(x)
    n, d = x.shape
    if n <= d:
        gram = (x.astype(np.float64) @ x.T.astype(np.float64)) / n
    else:
        gram = np.zeros((d, d), dtype=np.float64)
        for start in range(0, n, block_rows):
            block = x[start : start + block_rows]
            gram += (block.T @ block).astype(np.float64)
        gram /= n
    eigenvalues = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    total = eigenvalues.sum()
    if total <= 0:
        return 0.0
    p = eigenvalues[eigenvalues > 0] / total
    return float(np.exp(-(p * np.log(p)).sum()))
