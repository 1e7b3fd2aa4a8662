"""GPU check of the dashboards' GPU-only series (run on a machine with an NVIDIA GPU; about 2 minutes).

    .venv/bin/python scripts/gpu_check_metrics.py

The Engines dashboard's "GPU use" panel reads nv_gpu_utilization, nv_gpu_memory_used_bytes and
nv_gpu_memory_total_bytes, which Triton exports only where NVML sees a GPU: the dashboard test
(tests/cluster/test_dashboards.py) can check their queries but not their data on our CPU machines. This
starts Triton (the nvidia-pytriton wheel, as the tests do) with the painter on the GPU and the tiny random
pipeline, paints a few images, and checks that every GPU-only query of the dashboards has data, with a
real Prometheus when one is installed, else by reading Triton's /metrics. Exit status 0 when all do.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), *(str(p) for p in (ROOT / "services").glob("*")), str(ROOT / "clients" / "python")]

from scripts import observability  # noqa: E402
from storytelling.render.painters.base import PaintJob  # noqa: E402
from storytelling.render.painters.triton import TritonPainter  # noqa: E402
from storytelling.render.tiny import ensure_tiny_pipeline  # noqa: E402
from storytelling.stack.triton import triton_server  # noqa: E402


def gpu_queries() -> list[str]:
    return [
        q.expr.replace('namespace=~"$namespace"', "").replace("{}", "").replace(",}", "}").replace("{,", "{")
        for d in observability.DASHBOARDS
        for p in d.panels
        for q in p.queries
        if q.gpu_only
    ]


async def paint(url: str, count: int) -> None:
    painter = TritonPainter(url, stream_model="")
    try:
        await painter.start()
        for n in range(count):
            await painter.paint(
                PaintJob(f"a boy on a tipping stool, take {n}", "", 64, 64, 2, 5.0, n, f"s-{n}")
            )
    finally:
        await painter.close()


def main() -> int:
    params = {
        "model": str(ensure_tiny_pipeline()),
        "steps": "2",
        "width": "64",
        "height": "64",
        "device": "auto",
    }
    with (
        tempfile.TemporaryDirectory() as workdir,
        triton_server(["painter"], {"painter": params}, Path(workdir)) as server,
    ):
        asyncio.run(paint(server.grpc_url, 8))
        time.sleep(3)  # Triton refreshes GPU metrics every 2 s
        text = urllib.request.urlopen(server.metrics_url, timeout=5).read().decode()
        names = {m.group(1) for m in re.finditer(r"^(nv_gpu_\w+)\{", text, re.M)}
        print("Triton GPU series:", ", ".join(sorted(names)) or "none")
        missing = [
            n
            for n in ("nv_gpu_utilization", "nv_gpu_memory_used_bytes", "nv_gpu_memory_total_bytes")
            if n not in names
        ]
        if shutil.which("prometheus"):
            from storytelling.stack import prometheus

            target = server.metrics_url.removeprefix("http://").removesuffix("/metrics")
            with prometheus.prometheus({"painter": target}, interval_s=1) as prom:
                time.sleep(5)
                for query in gpu_queries():
                    result = prom.query(query.replace("$__rate_interval", "1m"))
                    print(f"{'ok   ' if result else 'EMPTY'} {query}")
                    missing += [] if result else [query]
        if missing:
            print("missing:", missing)
            return 1
        print("every GPU-only dashboard series has data")
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
