"""The default run's reliability: item success rate and time per item over many seeds.

`make run` is one job of 3 items on the `offline` profile (SmolLM2-135M in-process, storyboard sketch,
bundled embedder and spaCy). This starts that stack once and runs --jobs such jobs with seeds 0, 1, ...,
one after another as a user would, and prints:

  * item success rate (required: >= 99%), and the baseline measured in the same run: the rate the strict
    story filter alone would give, counting every salvaged story as a failure (what salvage buys);
  * time per item (mean, p50, p90) and per job, and the stack's start-up time.

    PYTHONPATH=... HF_HUB_OFFLINE=1 python bench/bench_default_run.py [--jobs 20] [--items 3]

Exits 1 when the success rate is below --required.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

from profile_runs import percentile, run_job
from storytelling.stack.local import LocalStack, StackOptions


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--items", type=int, default=3)
    parser.add_argument("--profile", default="offline")
    parser.add_argument("--required", type=float, default=0.99)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-default-") as data:
        start = time.perf_counter()
        options = StackOptions(data_dir=Path(data), profile=args.profile, ephemeral_ports=True)
        with LocalStack(options) as stack:
            stack.up()
            startup = time.perf_counter() - start
            print(f"profile {args.profile}: stack up in {startup:.1f} s", flush=True)
            runs = []
            for seed in range(args.jobs):
                run = run_job(stack.services["orchestrator"].address, args.items, seed)
                runs.append(run)
                print(
                    f"  seed {seed:>3}: {run.succeeded}/{run.items} items, {run.salvaged} salvaged, "
                    f"{run.seconds:.1f} s",
                    flush=True,
                )
    items = sum(r.items for r in runs)
    succeeded = sum(r.succeeded for r in runs)
    strict = succeeded - sum(r.salvaged for r in runs)
    per_item = [r.seconds / r.items for r in runs]
    rate = succeeded / items
    print(f"item success rate: {rate:.1%} ({succeeded} of {items} items over {len(runs)} seeds)")
    print(
        f"  baseline, strict filter without salvage: {strict / items:.1%}; salvage ratio {rate / max(strict / items, 1e-9):.2f}x"
    )
    print(
        f"time per item: mean {statistics.mean(per_item):.1f} s, p50 {percentile(per_item, 50):.1f} s, "
        f"p90 {percentile(per_item, 90):.1f} s; per job mean {statistics.mean(r.seconds for r in runs):.1f} s; "
        f"stack start {startup:.1f} s"
    )
    for error in [e for r in runs for e in r.errors]:
        print(f"  failed: {error}")
    return 0 if rate >= args.required else 1


if __name__ == "__main__":
    sys.exit(main())
