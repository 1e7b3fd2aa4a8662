"""Runs a real Prometheus server on loopback that scrapes the given metrics endpoints.

Used by the local stack (so a laptop sees the same metrics as the cluster) and by the tests that check
our exposition format and queries against the real thing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from storytelling.runtime.process import free_port


@dataclass
class PrometheusServer:
    process: subprocess.Popen
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def query(self, promql: str) -> list[dict]:
        """Instant query; returns the result vector (raises on a PromQL error)."""
        params = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{params}", timeout=10) as reply:
            body = json.load(reply)
        if body.get("status") != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]

    def targets_up(self) -> dict[str, bool]:
        with urllib.request.urlopen(f"{self.url}/api/v1/targets", timeout=10) as reply:
            active = json.load(reply)["data"]["activeTargets"]
        return {t["labels"]["job"]: t["health"] == "up" for t in active}

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.workdir, ignore_errors=True)


def scrape_config(targets: dict[str, str], interval_s: float) -> str:
    """A prometheus.yml scraping each `job name -> host:port` every `interval_s` seconds."""
    jobs = [
        {"job_name": job, "static_configs": [{"targets": [address]}]}
        for job, address in sorted(targets.items())
    ]
    interval = f"{max(1, round(interval_s))}s"
    config = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "scrape_configs": jobs,
    }
    return json.dumps(config, indent=2)  # JSON is valid YAML


def start(
    targets: dict[str, str], *, interval_s: float = 1.0, binary: str = "prometheus"
) -> PrometheusServer:
    path = shutil.which(binary)
    if path is None:
        raise FileNotFoundError("prometheus not found: run scripts/install_system_deps.sh")
    workdir = Path(tempfile.mkdtemp(prefix="prometheus-"))
    (workdir / "prometheus.yml").write_text(scrape_config(targets, interval_s))
    port = free_port()
    process = subprocess.Popen(
        [path, f"--config.file={workdir / 'prometheus.yml'}", f"--storage.tsdb.path={workdir / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
        stdout=subprocess.DEVNULL, stderr=(workdir / "prometheus.log").open("wb"),
        start_new_session=True, env={**os.environ},
    )
    server = PrometheusServer(process, port, workdir)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"prometheus exited: {(workdir / 'prometheus.log').read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(f"{server.url}/-/ready", timeout=1).close()
            return server
        time.sleep(0.2)
    server.stop()
    raise TimeoutError("prometheus not ready after 30s")


@contextlib.contextmanager
def prometheus(targets: dict[str, str], **kwargs) -> Iterator[PrometheusServer]:
    server = start(targets, **kwargs)
    try:
        yield server
    finally:
        server.stop()
