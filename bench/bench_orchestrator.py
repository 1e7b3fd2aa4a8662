"""Orchestrator benchmark: one orchestrator with instant stages, this checkout against a baseline commit.

Every measurement runs `bench/orchestrator_probe.py` in a fresh process (so peak memory is the job's
own), with PYTHONPATH pointing at either this checkout or the baseline commit's sources, extracted from
git into a temporary directory. Both drive the same instant stages (a fixed story, a 1x1 PNG with four
progress steps, a fixed evaluation), so what is measured is the orchestrator: its store, events,
artifacts and bookkeeping. Printed, each against the baseline measured in the same run:

  * items/s of one job with instant stages (throughput), best of --repeat runs;
  * peak RSS growth and database size after 10k items (and 100k for this checkout: the baseline keeps
    every item in memory and writes one event row per step, so its 100k run would take tens of
    minutes; --baseline-100k runs it anyway);
  * event rows stored per item, and item and job rows written per item;
  * seconds for a new watcher to catch up on a running 10k-item job.

    PYTHONPATH=... python bench/bench_orchestrator.py [--items 3000] [--baseline c9d4d4d] [--repeat 2]
"""

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = ROOT / "bench" / "orchestrator_probe.py"
# main before this work (the vocabulary step and the security work included): a SQLite transaction and an
# event row per change and per step, on the event loop; every item in memory.
DEFAULT_BASELINE = "c9d4d4d"
SOURCES = ["clients/python", "services/runtime", "services/orchestrator"]


def extract(commit: str, into: Path) -> Path:
    """The sources of `commit` (the packages the probe imports) under `into`."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", commit, "clients/python", "services"],
        check=True,
        capture_output=True,
    ).stdout
    with tempfile.TemporaryFile() as tar:
        tar.write(archive)
        tar.seek(0)
        with tarfile.open(fileobj=tar) as opened:
            opened.extractall(into, filter="data")
    return into


def probe(root: Path, workdir: Path, *args: str, timeout: float = 3600) -> dict:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(str(root / source) for source in SOURCES),
        "PYTHONHASHSEED": "0",
    }
    result = subprocess.run(
        [sys.executable, str(PROBE), *args],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
    )
    if result.returncode != 0:
        raise RuntimeError(f"probe {args} failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def stored_events(result: dict) -> float:
    """Event rows the database keeps per item (the baseline's log: one per change and per step)."""
    return result["rows"].get("events", 0) / result["items"]


def row_writes(result: dict) -> str:
    """Item and job rows written per item by this checkout's group commits (not counted by the baseline,
    which also rewrites the job row in every one of its transactions)."""
    written = result.get("rows_written")
    return "n/a" if written is None else f"{written / result['items']:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--items", type=int, default=3000, help="items of the throughput job")
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="commit to compare against")
    parser.add_argument("--repeat", type=int, default=2, help="throughput runs of each; the best is kept")
    parser.add_argument("--skip-throughput", action="store_true", help="skip the throughput runs")
    parser.add_argument(
        "--skip-large", action="store_true", help="skip the 10k/100k memory and catch-up runs"
    )
    parser.add_argument("--baseline-100k", action="store_true", help="also run the baseline at 100k items")
    parser.add_argument(
        "--dir",
        type=Path,
        default=Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir()),
        help="where the jobs' databases and artifacts go (default: memory-backed /dev/shm, so that both "
        "orchestrators are measured and not a disk shared with other work; give a disk path to include it)",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as tmp:
        versions = {"baseline": extract(args.baseline, Path(tmp)), "this checkout": ROOT}
        print(f"one orchestrator, instant stages; baseline = {args.baseline}; data in {args.dir}")

        if not args.skip_throughput:
            throughput(versions, args)
        if not args.skip_large:
            scale(versions, args)


def throughput(versions: dict[str, Path], args: argparse.Namespace) -> None:
    best: dict[str, dict] = {}
    for _ in range(args.repeat):  # alternating, so both see the same machine
        for name, root in versions.items():
            result = probe(root, args.dir, "throughput", "--items", str(args.items))
            if name not in best or result["items_per_s"] > best[name]["items_per_s"]:
                best[name] = result
    base, ours = best["baseline"], best["this checkout"]
    print(f"\n{'throughput (' + str(args.items) + ' items)':<34}{'baseline':>12}{'this checkout':>16}")
    print(f"{'items/s':<34}{base['items_per_s']:>12.0f}{ours['items_per_s']:>16.0f}")
    print(f"{'wall ms per item':<34}{1000 / base['items_per_s']:>12.2f}{1000 / ours['items_per_s']:>16.2f}")
    base_cpu, ours_cpu = (1000 * r["cpu_seconds"] / r["items"] for r in (base, ours))
    print(f"{'CPU ms per item':<34}{base_cpu:>12.2f}{ours_cpu:>16.2f}")
    print(f"{'event rows stored per item':<34}{stored_events(base):>12.1f}{stored_events(ours):>16.1f}")
    print(f"{'item and job rows written per item':<34}{row_writes(base):>12}{row_writes(ours):>16}")
    print(
        f"{'events to a live watcher per item':<34}"
        f"{base['events_seen_live'] / base['items']:>12.1f}{ours['events_seen_live'] / ours['items']:>16.1f}"
    )
    print(
        f"this checkout / baseline items/s = {ours['items_per_s'] / base['items_per_s']:.1f}x (target >= 10x)"
    )


def scale(versions: dict[str, Path], args: argparse.Namespace) -> None:
    print(f"\n{'scale':<34}{'baseline':>12}{'this checkout':>16}")
    sizes = [10_000, 100_000]
    for items in sizes:
        runs = {"this checkout": probe(ROOT, args.dir, "throughput", "--items", str(items))}
        if items < 100_000 or args.baseline_100k:
            runs["baseline"] = probe(versions["baseline"], args.dir, "throughput", "--items", str(items))
        base = runs.get("baseline")
        ours = runs["this checkout"]

        def cell(result: dict | None, key: str, fmt: str) -> str:
            return format(result[key], fmt) if result else "not run"

        print(
            f"{f'peak RSS growth, MB ({items} items)':<34}{cell(base, 'rss_growth_mb', '>12.0f'):>12}"
            f"{ours['rss_growth_mb']:>16.0f}"
        )
        print(
            f"{f'database, MB ({items} items)':<34}{cell(base, 'db_mb', '>12.1f'):>12}{ours['db_mb']:>16.1f}"
        )
        print(
            f"{f'items/s ({items} items)':<34}{cell(base, 'items_per_s', '>12.0f'):>12}"
            f"{ours['items_per_s']:>16.0f}"
        )
    catch = {name: probe(root, args.dir, "catch-up", "--items", "10000") for name, root in versions.items()}
    print(
        f"{'new watcher catches up, s (10k)':<34}{catch['baseline']['catch_up_seconds']:>12.2f}"
        f"{catch['this checkout']['catch_up_seconds']:>16.2f}"
    )
    print(
        f"{'  events it reads to catch up':<34}{catch['baseline']['events']:>12}"
        f"{catch['this checkout']['events']:>16}"
    )


if __name__ == "__main__":
    main()
