"""Evaluation service at scale: KNN diversity + Vendi score, and embedding throughput.

Diversity runs on random unit vectors of 384 dimensions (all-MiniLM-L6-v2's size) at 10k, 100k and 1M
stories, each size in its own subprocess so its peak RSS is its own. Reported beside each run:
  * naive: the whole n x n similarity matrix in numpy, argpartition per row, and the n x n eigen-
    decomposition for Vendi; only where it fits (default n <= 10k), in the same run;
  * GEMM floor: 2 n^2 d FLOPs at the GFLOP/s this machine measured for a float32 tile in the same run,
    the time an exact search cannot beat.
Where a full exact run would take too long on this machine (--max-queries), the search is timed on the
first Q query rows against all n and scaled by n / Q: labelled "extrapolated".
Embedding throughput encodes the project's story pool with the offline all-MiniLM-L6-v2.

    python bench/bench_evaluation.py [--sizes 10000,100000,1000000] [--device cpu|cuda] [--max-queries N]

Measured on 2026-11-27 (see the issue report): H200, 1M exact in 30 s (1.7x its fp32 GEMM floor).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

D, K = 384, 5
POOL = Path(__file__).resolve().parents[1] / "clients/python/storytelling/pools/storytelling_v1.jsonl"


def gemm_gflops(device: str, d: int = D, rows: int = 4096, cols: int = 16384, repeats: int = 5) -> float:
    import torch

    a = torch.randn(rows, d, device=device)
    b = torch.randn(cols, d, device=device)
    (a @ b.T).sum().item()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        c = a @ b.T
    c.sum().item()  # waits for the device
    return 2 * rows * cols * d * repeats / (time.perf_counter() - start) / 1e9


def unit_vectors(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).standard_normal((n, D), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


def naive(x: np.ndarray, k: int, vendi: bool) -> tuple[float, float | None, float]:
    """(seconds for KNN, seconds for Vendi or None, diversity): the textbook full-matrix implementation."""
    start = time.perf_counter()
    sim = x @ x.T
    np.fill_diagonal(sim, -np.inf)
    nearest = np.take_along_axis(sim, np.argpartition(-sim, k - 1, axis=1)[:, :k], axis=1)
    value = float((1.0 - nearest).mean())
    knn_s = time.perf_counter() - start
    del sim
    if not vendi:
        return knn_s, None, value
    start = time.perf_counter()
    kernel = (x.astype(np.float64) @ x.T.astype(np.float64)) / len(x)
    lam = np.clip(np.linalg.eigvalsh(kernel), 0, None)
    lam = lam[lam > 0] / lam.sum()
    np.exp(-(lam * np.log(lam)).sum())
    return knn_s, time.perf_counter() - start, value


def one(n: int, args: argparse.Namespace) -> dict:
    """Measures one size in this process."""
    import torch

    from storytelling.evaluation.diversity import diversity
    from storytelling.evaluation.knn import knn, vendi_score

    x = unit_vectors(n, args.seed)
    baseline_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tile = args.tile_mb << 20
    result: dict = {"n": n, "device": args.device, "gflops": gemm_gflops(args.device)}
    result["floor_s"] = 2 * n * n * D / (result["gflops"] * 1e9)
    if args.device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    vendi = vendi_score(x)
    result["vendi_s"] = time.perf_counter() - start
    queries = min(args.max_queries or n, n)
    start = time.perf_counter()
    if queries < n:  # same tiles and selection as the self-search, on a slice of the query rows
        knn(x, K + 1, queries=x[:queries], tile_bytes=tile, device=args.device)
        result["knn_s"] = (time.perf_counter() - start) * n / queries
        result["extrapolated_from"] = queries
    else:
        report = diversity(x, K, tile_bytes=tile, device=args.device)
        result["knn_s"] = time.perf_counter() - start - result["vendi_s"]  # diversity() runs Vendi too
        result["diversity"] = report.diversity
    result["vendi"] = vendi
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result["data_mb"] = x.nbytes / 2**20
    result["rss_over_data_mb"] = result["peak_rss_mb"] - baseline_mb
    if args.device.startswith("cuda"):
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    if n <= args.naive_max:
        result["naive_knn_s"], result["naive_vendi_s"], naive_diversity = naive(
            x, K, n <= args.naive_vendi_max
        )
        if "diversity" in result:
            assert abs(naive_diversity - result["diversity"]) < 1e-4, (naive_diversity, result["diversity"])
    return result


def embedding_throughput(count: int) -> dict:
    from storytelling.evaluation.embedder import SentenceEmbedder

    stories = [json.loads(line)["story"] for line in POOL.read_text().splitlines() if line.strip()]
    batch = (stories * (count // len(stories) + 1))[:count]
    embedder = SentenceEmbedder()
    embedder.encode(batch[:32])  # loads weights, warms up
    start = time.perf_counter()
    embedder.encode(batch)
    seconds = time.perf_counter() - start
    return {
        "stories": count,
        "seconds": seconds,
        "words_per_story": float(np.mean([len(s.split()) for s in batch])),
    }


def _cell(seconds: float | None, width: int) -> str:
    return f"{seconds:>{width}.2f}" if seconds is not None else f"{'-':>{width}}"


def _ratio(naive_s: float | None, ours_s: float) -> str:
    return f"{naive_s / ours_s:>7.1f}x" if naive_s is not None else f"{'-':>8}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--tile-mb", type=int, default=256)
    parser.add_argument(
        "--max-queries",
        type=int,
        help="above --naive-max, time this many query rows and scale to n "
        "(default: 4096 on CPU, all on CUDA)",
    )
    parser.add_argument("--naive-max", type=int, default=10000, help="largest n for the naive KNN")
    parser.add_argument(
        "--naive-vendi-max", type=int, default=10000, help="largest n for the naive n^3 Vendi"
    )
    parser.add_argument("--embed", type=int, default=512, help="stories to embed; 0 skips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args)))
        return
    if args.max_queries is None:  # a full exact 1M search takes hours on a few CPU cores
        args.max_queries = 0 if args.device.startswith("cuda") else 4096

    print(f"diversity (k={K}, d={D}, exact blocked search, {args.tile_mb} MiB tiles, device {args.device})")
    header = f"{'n':>9} {'knn s':>9} {'floor s':>9} {'x floor':>7} {'naive knn s':>11} {'speed-up':>8} "
    header += (
        f"{'vendi s':>8} {'naive vendi s':>13} {'speed-up':>8} {'peak RSS MiB':>12} {'data MiB':>8}  note"
    )
    print(header)
    for n in (int(s) for s in args.sizes.split(",")):
        argv = [sys.executable, __file__, "--one", str(n), "--device", args.device,
                "--tile-mb", str(args.tile_mb),
                "--max-queries", str(args.max_queries if n > args.naive_max else 0),
                "--naive-max", str(args.naive_max), "--naive-vendi-max", str(args.naive_vendi_max),
                "--seed", str(args.seed)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, env=os.environ)
        if out.returncode:
            print(f"{n:>9} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        note = [f"GEMM {r['gflops']:.0f} GFLOP/s"]
        if "extrapolated_from" in r:
            note.append(f"knn extrapolated from {r['extrapolated_from']} query rows")
        if "gpu_peak_mb" in r:
            note.append(f"GPU peak {r['gpu_peak_mb']:.0f} MiB")
        print(
            f"{n:>9} {r['knn_s']:>9.2f} {r['floor_s']:>9.2f} {r['knn_s'] / r['floor_s']:>7.2f} "
            f"{_cell(r.get('naive_knn_s'), 11)} {_ratio(r.get('naive_knn_s'), r['knn_s'])} "
            f"{r['vendi_s']:>8.2f} {_cell(r.get('naive_vendi_s'), 13)} "
            f"{_ratio(r.get('naive_vendi_s'), r['vendi_s'])} "
            f"{r['peak_rss_mb']:>12.0f} {r['data_mb']:>8.0f}  {'; '.join(note)}"
        )
    if args.embed:
        e = embedding_throughput(args.embed)
        print(
            f"embedding: {e['stories']} stories ({e['words_per_story']:.0f} words each) in "
            f"{e['seconds']:.2f}s = {e['stories'] / e['seconds']:.1f} stories/s (all-MiniLM-L6-v2, batch 64)"
        )


if __name__ == "__main__":
    main()
