"""`cpu-engines` against `offline`, measured in the same run: start-up, time to first item, steady rate.

Each profile's stack starts on free ports, runs one job of --items default items, and stops:

  * start-up: from launching the stack to the orchestrator serving (vLLM and Triton load on cpu-engines);
  * time to first item: from CreateJob to the first item done (story, image, every evaluator);
  * steady items/minute: the items after the first over the time they took.

`offline` writes in-process, paints sketches and runs no judge; `cpu-engines` serves the storyteller
and extractor on vLLM CPU, paints on Triton CPU and runs alignment and complexity on a vLLM judge, so it
does more work per item: the ratios say what the production topology costs on a CPU machine.

    PYTHONPATH=... HF_HUB_OFFLINE=1 python bench/bench_profiles.py [--items 6]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from profile_runs import run_job
from storytelling.stack.local import LocalStack, StackOptions


def measure(profile: str, items: int, seed: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{profile}-") as data:
        start = time.perf_counter()
        with LocalStack(StackOptions(data_dir=Path(data), profile=profile, ephemeral_ports=True)) as stack:
            stack.up()
            startup = time.perf_counter() - start
            run = run_job(stack.services["orchestrator"].address, items, seed)
    first, last = run.item_done_s[0], run.item_done_s[-1]
    steady = (len(run.item_done_s) - 1) / (last - first) * 60 if last > first else float("nan")
    result = {"startup": startup, "first": first, "steady": steady, "ok": run.succeeded, "items": run.items}
    print(
        f"{profile:<12} start-up {startup:6.1f} s, first item {first:6.1f} s, steady {steady:5.2f} items/min, "
        f"{run.succeeded}/{run.items} items succeeded",
        flush=True,
    )
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=6)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    base = measure("offline", args.items, args.seed)
    engines = measure("cpu-engines", args.items, args.seed)
    print(
        f"cpu-engines / offline: start-up {engines['startup'] / base['startup']:.2f}x, time to first item "
        f"{engines['first'] / base['first']:.2f}x, steady rate {engines['steady'] / base['steady']:.2f}x"
    )
    return 0 if engines["ok"] == engines["items"] and base["ok"] == base["items"] else 1


if __name__ == "__main__":
    sys.exit(main())
