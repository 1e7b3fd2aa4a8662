"""Evaluation service at scale: diversity exact against approximate search, embedding precision, and the
text-side measures' per-dimension F1 on the validation set.

Diversity (k=5, 384 dimensions) at 100k and 1M stories on the CPU, each size in its own subprocess:
  * approximate: the service's own path (faiss IVF above `approximate_above`), timed end to end (index
    training, search, Vendi), with the recall@k it measures against exact search on 1000 query rows;
  * exact: the tiled GEMM search, timed in the same run on the same vectors. Where a full exact run
    would take too long (above --exact-max), it is timed on --max-queries query rows against all n and
    scaled by n / Q: labelled "extrapolated";
  * the error of the approximate per-story diversity against exact, on the recall sample's rows.
The vectors are synthetic but shaped like story embeddings: each is a mixture of two real
all-MiniLM-L6-v2 sentence embeddings of the shipped pool plus Gaussian noise, renormalised (uniform
random vectors have no neighbourhood structure and would flatter nothing and no one).
Embedding: all-MiniLM-L6-v2 on the pool's stories in float32 against the fast precision (bfloat16 on
CPUs with bf16 units), with their cosine agreement and the effect on the pool's diversity.
Text measures: per-dimension precision, recall and F1 on tests/evaluation/data/text_validation.jsonl.

    python bench/bench_evaluation.py [--sizes 100000,1000000] [--max-queries 2000] [--embed 320]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

D, K = 384, 5
ROOT = Path(__file__).resolve().parents[1]
POOL = ROOT / "clients/python/storytelling/api/pools/storytelling_v1.jsonl"


def pool_stories() -> list[str]:
    return [json.loads(line)["story"] for line in POOL.read_text().splitlines() if line.strip()]


def story_like_vectors(n: int, seed: int) -> np.ndarray:
    """Mixtures of two real sentence embeddings of the pool plus noise, unit norm."""
    from storytelling.evaluation.embedder import SentenceEmbedder

    sentences = [s.strip() + "." for story in pool_stories() for s in story.split(".") if len(s.split()) > 3]
    centres = SentenceEmbedder(dtype="float32").encode(sentences)
    rng = np.random.default_rng(seed)
    x = np.empty((n, D), dtype=np.float32)
    for start in range(0, n, 100_000):
        m = min(100_000, n - start)
        a, b = rng.integers(0, len(centres), m), rng.integers(0, len(centres), m)
        mix = rng.uniform(0.2, 0.8, (m, 1)).astype(np.float32)
        block = (
            mix * centres[a] + (1 - mix) * centres[b] + 0.03 * rng.standard_normal((m, D), dtype=np.float32)
        )
        x[start : start + m] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return x


def one(n: int, args: argparse.Namespace) -> dict:
    """Measures one size in this process: the approximate path, then exact on the same vectors."""
    from storytelling.evaluation.diversity import diversity
    from storytelling.evaluation.knn import knn

    x = story_like_vectors(n, args.seed)
    result: dict = {"n": n}
    start = time.perf_counter()
    approx = diversity(x, K, approximate_above=0, nprobe=args.nprobe)
    result["approx_s"] = time.perf_counter() - start
    result.update(search=approx.search, recall=approx.recall, recall_sample=approx.recall_sample)
    result["approx_diversity"] = approx.diversity
    rows = np.sort(np.random.default_rng(args.seed).choice(n, min(n, args.max_queries), replace=False))
    exact_rows = knn(x, K + 1, queries=x[rows])
    others = np.where(exact_rows.indices == rows[:, None], -np.inf, exact_rows.similarities)
    exact_per_story = (1 - np.sort(others, axis=1)[:, ::-1][:, :K]).mean(axis=1)
    result["diversity_abs_error"] = float(np.abs(approx.per_story[rows] - exact_per_story).mean())
    if n <= args.exact_max:
        start = time.perf_counter()
        exact = diversity(x, K)
        result["exact_s"] = time.perf_counter() - start
        result["exact_diversity"] = exact.diversity
    else:
        start = time.perf_counter()
        knn(x, K + 1, queries=x[rows])
        result["exact_s"] = (time.perf_counter() - start) * n / len(rows)
        result["extrapolated_from"] = len(rows)
    return result


def embedding(count: int) -> dict:
    from storytelling.evaluation.diversity import diversity
    from storytelling.evaluation.embedder import SentenceEmbedder, fast_dtype

    stories = pool_stories()
    batch = (stories * (count // len(stories) + 1))[:count]
    measured = {}
    for dtype in ("float32", fast_dtype("cpu")):
        embedder = SentenceEmbedder(dtype=dtype)
        embedder.encode(batch[:32])  # loads weights, warms up
        start = time.perf_counter()
        vectors = embedder.encode(batch)
        measured[dtype] = (time.perf_counter() - start, vectors)
    fast = fast_dtype("cpu")
    (base_s, base), (fast_s, quick) = measured["float32"], measured[fast]
    cosine = (base * quick).sum(axis=1)
    pool_base, pool_fast = diversity(base[: len(stories)], K), diversity(quick[: len(stories)], K)
    return {
        "stories": count,
        "fast": fast,
        "float32_per_s": count / base_s,
        "fast_per_s": count / fast_s,
        "cos_min": float(cosine.min()),
        "cos_mean": float(cosine.mean()),
        "diversity_float32": pool_base.diversity,
        "diversity_fast": pool_fast.diversity,
        "per_story_max_diff": float(np.abs(pool_base.per_story - pool_fast.per_story).max()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument(
        "--exact-max", type=int, default=100_000, help="largest n timed with a full exact run"
    )
    parser.add_argument("--max-queries", type=int, default=2000, help="query rows timed above --exact-max")
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--embed", type=int, default=320, help="stories to embed; 0 skips")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args)))
        return
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(f"diversity (k={K}, d={D}, CPU): exact tiled GEMM against the approximate index, same vectors")
    print(
        f"{'n':>9} {'exact s':>9} {'approx s':>9} {'speed-up':>8} {'recall@k':>8} {'|Δdiv|':>8}  search; note"
    )
    for n in (int(s) for s in args.sizes.split(",")):
        argv = [sys.executable, __file__, "--one", str(n), "--exact-max", str(args.exact_max),
                "--max-queries", str(args.max_queries), "--nprobe", str(args.nprobe), "--seed", str(args.seed)]  # fmt: skip
        out = subprocess.run(argv, capture_output=True, text=True, env=os.environ)
        if out.returncode:
            print(f"{n:>9} failed: {out.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(out.stdout.strip().splitlines()[-1])
        note = (
            f"exact extrapolated from {r['extrapolated_from']} query rows"
            if "extrapolated_from" in r
            else "full exact run"
        )
        print(
            f"{n:>9} {r['exact_s']:>9.1f} {r['approx_s']:>9.1f} {r['exact_s'] / r['approx_s']:>7.1f}x "
            f"{r['recall']:>8.3f} {r['diversity_abs_error']:>8.4f}  {r['search']}; recall on "
            f"{r['recall_sample']} rows; {note}"
        )
    if args.embed:
        e = embedding(args.embed)
        print(
            f"embedding ({e['stories']} pool stories, all-MiniLM-L6-v2): float32 {e['float32_per_s']:.1f}/s, "
            f"{e['fast']} {e['fast_per_s']:.1f}/s = {e['fast_per_s'] / e['float32_per_s']:.2f}x; cosine "
            f"agreement min {e['cos_min']:.4f} mean {e['cos_mean']:.4f}; pool diversity "
            f"{e['diversity_float32']:.4f} vs {e['diversity_fast']:.4f} (largest per-story change "
            f"{e['per_story_max_diff']:.4f})"
        )
    validation = ROOT / "scripts" / "validate_text_measures.py"
    if validation.exists():
        subprocess.run([sys.executable, str(validation)], check=False, env=os.environ)


if __name__ == "__main__":
    main()
