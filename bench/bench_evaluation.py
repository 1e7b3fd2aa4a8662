"""Evaluation service at scale: diversity exact against approximate search, embedding precision, and the
text-side measures' per-dimension F1 on the validation set.

Diversity (k=5, 384 dimensions) at 100k and 1M stories on the CPU, each size in its own subprocess:
  * approximate: the service's own path (the GEMM-batched IVF of `ann` above `approximate_above`), timed
    end to end (k-means, assignment, scan, recall, Vendi), with the recall@k it measures against exact
    search on 1000 query rows, and the child's peak memory;
  * exact: the tiled GEMM search, timed in the same run on the same vectors. Where a full exact run
    would take too long (above --exact-max), it is timed on --max-queries query rows against all n and
    scaled by n / Q: labelled "extrapolated";
  * the error of the approximate per-story diversity against exact, on the recall sample's rows.
The vectors are synthetic but shaped like story embeddings: each is a mixture of two real
all-MiniLM-L6-v2 sentence embeddings of the shipped pool plus Gaussian noise, renormalised (uniform
random vectors have no neighbourhood structure and would flatter nothing and no one).
The load average is sampled every 5 s while each size runs: on a shared machine it says how much of the
two cores the run had.
Embedding: all-MiniLM-L6-v2 on the pool's stories in float32 against torch bfloat16 (the service's `auto`
on CPUs with bf16 units) and OpenVINO with a bfloat16 precision hint (the service's
`--embed-backend openvino`), interleaved over --embed-rounds rounds (median per backend), wall and CPU-time
throughput, cosine agreement with float32 and the effect on the pool's diversity.
Text measures: per-dimension precision, recall and F1 on tests/evaluation/data/text_validation.jsonl.

    python bench/bench_evaluation.py [--sizes 100000,1000000] [--max-queries 2000] [--embed 160]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from storytelling.evaluation.ann import DEFAULT_NPROBE

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
    result["approx_peak_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
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


def embedding(count: int, rounds: int) -> dict:
    from statistics import median

    from storytelling.evaluation.diversity import diversity
    from storytelling.evaluation.embedder import SentenceEmbedder

    stories = pool_stories()
    batch = (stories * (count // len(stories) + 1))[:count]
    encoders = {
        "float32": SentenceEmbedder(dtype="float32").encode,
        "torch bfloat16": SentenceEmbedder(dtype="bfloat16").encode,
        "openvino bf16": SentenceEmbedder(dtype="bfloat16", backend="openvino").encode,
    }
    for encode in encoders.values():
        encode(batch[:32])  # loads weights, warms up
    wall: dict[str, list[float]] = {name: [] for name in encoders}
    cpu: dict[str, list[float]] = {name: [] for name in encoders}
    vectors = {}
    for _ in range(rounds):  # interleaved, so that a change of load hits every backend alike
        for name, encode in encoders.items():
            w, c = time.perf_counter(), time.process_time()
            vectors[name] = encode(batch)
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    base = vectors["float32"]
    pool_base = diversity(base[: len(stories)], K)
    result = {"stories": count, "rounds": rounds, "backends": {}}
    for name in encoders:
        cosine = (base * vectors[name]).sum(axis=1)
        pool = diversity(vectors[name][: len(stories)], K)
        result["backends"][name] = {
            "per_s": count / median(wall[name]),
            "per_cpu_s": count / median(cpu[name]),
            "cos_min": float(cosine.min()),
            "cos_mean": float(cosine.mean()),
            "diversity": pool.diversity,
            "per_story_max_diff": float(np.abs(pool_base.per_story - pool.per_story).max()),
        }
    return result


class LoadSampler:
    """The 1-minute load average, sampled every 5 s while the block runs."""

    def __enter__(self) -> "LoadSampler":
        self.samples = [os.getloadavg()[0]]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(os.getloadavg()[0])
        self.mean, self.max = sum(self.samples) / len(self.samples), max(self.samples)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000", help="diversity set sizes; empty skips")
    parser.add_argument(
        "--exact-max", type=int, default=100_000, help="largest n timed with a full exact run"
    )
    parser.add_argument("--max-queries", type=int, default=2000, help="query rows timed above --exact-max")
    parser.add_argument("--nprobe", type=int, default=DEFAULT_NPROBE)
    parser.add_argument("--embed", type=int, default=160, help="stories to embed; 0 skips")
    parser.add_argument("--embed-rounds", type=int, default=3)
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
    for n in (int(s) for s in args.sizes.split(",") if s):
        argv = [sys.executable, __file__, "--one", str(n), "--exact-max", str(args.exact_max),
                "--max-queries", str(args.max_queries), "--nprobe", str(args.nprobe), "--seed", str(args.seed)]  # fmt: skip
        with LoadSampler() as load:
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
            f"{r['recall_sample']} rows; {note}; peak {r['approx_peak_gib']:.1f} GiB; load average "
            f"mean {load.mean:.1f} max {load.max:.1f} during the run"
        )
    if args.embed:
        with LoadSampler() as load:
            e = embedding(args.embed, args.embed_rounds)
        base = e["backends"]["float32"]
        print(
            f"embedding ({e['stories']} pool stories, all-MiniLM-L6-v2, median of {e['rounds']} interleaved "
            f"rounds; load average mean {load.mean:.1f} max {load.max:.1f}):"
        )
        for name, b in e["backends"].items():
            print(
                f"  {name:15} {b['per_s']:6.1f}/s ({b['per_s'] / base['per_s']:.2f}x) "
                f"{b['per_cpu_s']:6.1f}/CPU-s ({b['per_cpu_s'] / base['per_cpu_s']:.2f}x)  cosine to "
                f"float32 min {b['cos_min']:.4f} mean {b['cos_mean']:.4f}  pool diversity {b['diversity']:.4f} "
                f"(largest per-story change {b['per_story_max_diff']:.4f})"
            )
    validation = ROOT / "scripts" / "validate_text_measures.py"
    if validation.exists():
        subprocess.run([sys.executable, str(validation)], check=False, env=os.environ)


if __name__ == "__main__":
    main()
