"""The `storytelling` command end to end: a real subprocess against a real gRPC server."""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from storytelling.runtime.testing import free_port

from tests.client.fake_services import png
from tests.client.server import serve_in_thread
from tests.client.services import TestServices

ROOT = Path(__file__).resolve().parents[2]


def storytelling(
    *args: str,
    address: str = "",
    pythonpath: tuple[str, ...] = (),
    env: dict | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    paths = [*pythonpath, str(ROOT / "clients" / "python")]
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(paths), **(env or {})}
    if address:
        environment["STORYTELLING_ADDRESS"] = environment["STORYTELLING_EVALUATION_ADDRESS"] = address
    return subprocess.run(
        [sys.executable, "-m", "storytelling.cli.main", *args],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_paint_watches_the_job_and_prints_the_gallery(address: str) -> None:
    result = storytelling("paint", "-n", "3", "--seed", "5", "--name", "cli job", address=address)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    job_id = lines[0].split()[1]
    assert lines[0] == f"job {job_id} created: 3 items, seed 5"
    for index in range(3):
        for stage in ("story", "render", "evaluate"):
            assert sum(line.startswith(f"item {index}: {stage} done") for line in lines) == 1, stage
    assert f"job {job_id}: succeeded" in lines
    gallery = Path(lines[-1].removeprefix("gallery: "))
    assert lines[-1].startswith("gallery: ") and gallery.is_file()
    assert "cli job" in gallery.read_text()


def test_paint_reports_failed_items_with_a_nonzero_exit(address: str) -> None:
    result = storytelling("paint", "-n", "3", "--theme", "fail-render", address=address)
    assert result.returncode == 1
    assert re.search(
        r"^item 1: render failed \(\d/3\): render failed after 1 attempt\(s\): Internal: painter 'sketch' crashed$",
        result.stdout,
        re.MULTILINE,
    )
    assert "  item 1 failed: render failed after 1 attempt(s)" in result.stdout
    assert "2 of 3 items succeeded, 1 failed" in result.stdout
    assert "gallery: " in result.stdout


def test_paint_rejects_bad_input_with_the_field(address: str) -> None:
    result = storytelling("paint", "-n", "0", address=address)
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "storytelling: error: invalid request (field spec.items): must be in [1, 20], got 0"
    )
    result = storytelling("paint", "--painter", "picasso", address=address)
    assert result.returncode == 2 and "field spec.render.painter" in result.stderr
    result = storytelling("paint", "--mode", "poetic", address=address)
    assert result.returncode == 2 and "invalid choice: 'poetic'" in result.stderr


def test_status_list_and_cancel(services: tuple[str, TestServices], tmp_path: Path) -> None:
    address, _ = services
    done = storytelling("paint", "-n", "3", "--name", "finished one", address=address)
    assert done.returncode == 0, done.stderr
    job_id = done.stdout.split()[1]

    status = storytelling("status", job_id, address=address)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"job {job_id} (finished one): succeeded, 3/3 items succeeded, 0 failed")
    assert "item   1  succeeded" in status.stdout and "alignment 0." in status.stdout
    assert "  story     ############################    3/3" in status.stdout
    first = storytelling("status", job_id, "--items", "1", address=address)
    assert "item   0  succeeded" in first.stdout and "item   1" not in first.stdout
    assert "... 2 more items (--items 0 shows all)" in first.stdout

    as_json = storytelling("status", job_id, "--json", address=address)
    assert '"state": "JOB_STATE_SUCCEEDED"' in as_json.stdout and '"index": 2' in as_json.stdout

    listing = storytelling("list", "--state", "succeeded", address=address)
    assert listing.returncode == 0 and job_id in listing.stdout and "finished one" in listing.stdout

    refused = storytelling("cancel", job_id, address=address)
    assert refused.returncode == 4 and "already ended" in refused.stderr

    missing = storytelling("status", "job-9999", address=address)
    assert missing.returncode == 3 and "no job 'job-9999'" in missing.stderr


def test_cancel_a_running_job(tmp_path: Path) -> None:
    with serve_in_thread(lambda: TestServices(tmp_path, stage_delay_s=1.0)) as address:
        created = storytelling("paint", "-n", "10", "--detach", address=address)
        job_id = created.stdout.split()[1]
        assert created.returncode == 0 and f"storytelling status {job_id}" in created.stdout
        result = storytelling("cancel", job_id, address=address)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"job {job_id}: cancelled"


def test_unreachable_orchestrator_says_how_to_start_it() -> None:
    result = storytelling("list", "--address", f"127.0.0.1:{free_port()}")
    assert result.returncode == 5
    assert "is it running" in result.stderr and "storytelling stack up" in result.stderr


def _research_folder(root: Path) -> Path:
    folder = root / "research"
    (folder / "images").mkdir(parents=True)
    with (folder / "stories.csv").open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["img_id", "story"])
        writer.writerow(["0001", "A boy on a tipping stool steals cookies, his mother lost in thought."])
        writer.writerow(["0002", "At 3 AM a nurse finds her twin brother asleep in the hospital lobby."])
        writer.writerow(["0003", "A referee slips on a banana peel during the final."])
    (folder / "images" / "0001.png").write_bytes(png(1))
    (folder / "images" / "0002.png").write_bytes(png(2))
    return folder


def test_evaluate_a_research_folder(address: str, tmp_path: Path) -> None:
    folder = _research_folder(tmp_path)
    result = storytelling("evaluate", str(folder), address=address)
    assert result.returncode == 0, result.stderr
    assert "3 stories, 2 with an image" in result.stdout
    assert "skipping 1 stories without an image (0003)" in result.stderr
    assert "0001: alignment not run (no vision-language judge configured), complexity 0.077" in result.stdout
    assert "set of 2, diversity 0.300 (Vendi 1.20), mean alignment not run" in result.stdout
    out = folder / "evaluation"
    assert sorted(p.name for p in (out / "items").iterdir()) == ["00000", "00001"]
    assert (out / "items" / "00000" / "image.png").read_bytes() == png(1)
    page = (out / "gallery" / "index.html").read_text()
    assert "tipping stool" in page and "not run: no vision-language judge configured" in page
    # A second run ignores the results of the first.
    again = storytelling("evaluate", str(folder), address=address)
    assert again.returncode == 0 and "3 stories, 2 with an image" in again.stdout


def test_evaluate_text_files_and_bad_folders(address: str, tmp_path: Path) -> None:
    folder = tmp_path / "txt"
    folder.mkdir()
    (folder / "a.txt").write_text("A girl hides a frog in her teacher's drawer.")
    (folder / "a.jpg").write_bytes(png(3))  # named .jpg, really a PNG: the format comes from the bytes
    ok = storytelling("evaluate", str(folder), "--out", str(tmp_path / "out"), address=address)
    assert ok.returncode == 0, ok.stderr
    assert "1 stories, 1 with an image" in ok.stdout

    stories_only = tmp_path / "stories-only"
    stories_only.mkdir()
    (stories_only / "s1.txt").write_text("A nurse drops a tray of glasses.")
    (stories_only / "s2.txt").write_text("A referee slips on a banana peel.")
    text = storytelling("evaluate", str(stories_only), address=address)
    assert (
        text.returncode == 0 and "2 stories, 0 with an image" in text.stdout and "skipping" not in text.stderr
    )

    (tmp_path / "empty").mkdir()
    empty = storytelling("evaluate", str(tmp_path / "empty"), address=address)
    assert empty.returncode == 1 and "no stories found" in empty.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "stories.jsonl").write_text('{"id": "x", "story": "fine"}\n{"id": "y"}\n')
    broken = storytelling("evaluate", str(bad), address=address)
    assert broken.returncode == 1 and "stories.jsonl:2: needs a story" in broken.stderr
    (folder / "a.jpg").write_text("not an image")
    not_image = storytelling("evaluate", str(folder), address=address)
    assert (
        not_image.returncode == 1 and f"{folder / 'a.jpg'}: not a PNG, JPEG or WebP image" in not_image.stderr
    )


def test_report_builds_a_gallery(tmp_path: Path) -> None:
    from tests.report.jobdir import make_job_dir

    job_dir = make_job_dir(tmp_path)
    result = storytelling("report", str(job_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"gallery: {job_dir.resolve() / 'gallery' / 'index.html'}"
    missing = storytelling("report", str(tmp_path / "nothing"))
    assert missing.returncode == 1 and "is not a job directory" in missing.stderr


# Stands in for storytelling.stack.local (the services' launcher) with the same two entry points: the
# `up` command serving until SIGTERM, and LocalStack(StackOptions(...)) whose up() returns the endpoints.
_STAND_IN = textwrap.dedent("""
    import asyncio, contextlib, dataclasses, pathlib, signal, sys
    from storytelling.runtime.server import ServiceServer
    from storytelling.runtime.config import ServiceSettings
    from tests.client.services import TestServices
    from tests.client.server import serve_in_thread

    @dataclasses.dataclass(frozen=True)
    class StackOptions:
        data_dir: pathlib.Path
        profile: str = "offline"
        ephemeral_ports: bool = False

    class LocalStack(contextlib.ExitStack):
        def __init__(self, options):
            super().__init__()
            self.options = options

        def up(self):
            assert self.options.ephemeral_ports
            address = self.enter_context(serve_in_thread(lambda: TestServices(self.options.data_dir)))
            return {"orchestrator": address}

    async def main(port, data_dir):
        server = ServiceServer(TestServices(data_dir), ServiceSettings(port=port, metrics_port=0))
        await server.start()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()
        await server.stop(grace=1)

    if __name__ == "__main__":
        assert sys.argv[1:4] == ["up", "--profile", "offline"], sys.argv
        asyncio.run(main(int(sys.argv[4]), pathlib.Path(sys.argv[5])))
""")


def _stand_in(tmp_path: Path) -> tuple[str, ...]:
    package = tmp_path / "standin" / "storytelling" / "stack"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "local.py").write_text(_STAND_IN)
    services = [str(ROOT / "services" / name) for name in ("runtime", "orchestrator")]
    return (str(tmp_path / "standin"), *services, str(ROOT))


def test_paint_embedded_runs_the_job_on_a_stack_of_its_own(tmp_path: Path) -> None:
    paths = _stand_in(tmp_path)
    result = storytelling("paint", "--embedded", "--data-dir", str(tmp_path / "runs"), pythonpath=paths)
    assert result.returncode == 0, result.stderr
    assert "starting the local stack (profile offline" in result.stderr
    job_id = result.stdout.split()[1]
    assert (
        result.stdout.splitlines()[-1]
        == f"gallery: {tmp_path / 'runs' / 'jobs' / job_id / 'gallery' / 'index.html'}"
    )
    refused = storytelling("paint", "--embedded", "--detach", pythonpath=paths)
    assert refused.returncode == 1 and "--detach cannot be used with --embedded" in refused.stderr


def test_stack_up_detached_then_down(tmp_path: Path) -> None:
    paths = _stand_in(tmp_path)
    port = free_port()
    env = {"STORYTELLING_CACHE_DIR": str(tmp_path / "cache")}

    up = storytelling(
        "stack",
        "up",
        "--detach",
        "--wait",
        "30",
        "--address",
        f"127.0.0.1:{port}",
        "--",
        str(port),
        str(tmp_path / "data"),
        pythonpath=paths,
        env=env,
    )
    assert up.returncode == 0, up.stderr + (tmp_path / "cache" / "stack.log").read_text()
    pid = int((tmp_path / "cache" / "stack.pid").read_text())
    assert f"stack is up (pid {pid})" in up.stdout
    try:
        painted = storytelling("paint", "-n", "1", "--address", f"127.0.0.1:{port}")
        assert painted.returncode == 0, painted.stderr
        again = storytelling("stack", "up", "--detach", pythonpath=paths, env=env)
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        down = storytelling("stack", "down", pythonpath=paths, env=env)
    assert down.returncode == 0, down.stderr
    assert down.stdout.strip() == f"stack (pid {pid}) stopped"
    assert not (tmp_path / "cache" / "stack.pid").exists()
    time.sleep(0.2)
    gone = storytelling("stack", "down", pythonpath=paths, env=env)
    assert gone.returncode == 1 and "no detached stack is running" in gone.stderr


def test_paint_plain_output_is_not_ansi(address: str) -> None:
    result = storytelling("paint", "-n", "1", "--skip-render", address=address)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout
    assert "item 0: story done (1/1)" in result.stdout and "render" not in result.stdout


def test_stack_status_shows_each_process_and_why_the_stack_stopped(tmp_path: Path) -> None:
    from storytelling.api.stackstatus import ChildStatus, StackStatus, write_status

    path = tmp_path / "stack-status.json"
    now = time.time()
    children = [
        ChildStatus("story", "running", pid=4242, started_at=now - 60, address="127.0.0.1:50051"),
        ChildStatus(
            "render",
            "backoff",
            restarts=2,
            last_exit="killed by SIGKILL",
            last_exit_at=now - 3,
            next_start_at=now + 4,
        ),
    ]
    write_status(path, StackStatus(pid=os.getpid(), state="running", children=children))
    running = storytelling("stack", "status", "--status-file", str(path))
    assert running.returncode == 0, running.stderr
    lines = running.stdout.splitlines()
    assert lines[0] == f"stack (pid {os.getpid()}): running"
    assert lines[2].split() == ["story", "running", "4242", "0"]
    assert lines[3].split()[:4] == ["render", "backoff", "-", "2"]
    assert re.search(r"killed by SIGKILL \d+ s ago; restarts in \d s$", lines[3])

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    write_status(
        path, StackStatus(pid=dead.pid, state="stopped", reason="render crash loop", children=children)
    )
    stopped = storytelling("stack", "status", "--status-file", str(path))
    assert stopped.returncode == 1 and stopped.stdout.startswith(
        f"stack (pid {dead.pid}): stopped: render crash loop"
    )
    missing = storytelling("stack", "status", "--status-file", str(tmp_path / "none.json"))
    assert missing.returncode == 1 and "no local stack has run here" in missing.stderr


def test_items_wait_for_a_restarting_painter_and_status_says_so(services) -> None:
    """The painter answers UNAVAILABLE for a while: `storytelling status` shows the items and the render
    stage waiting for it, the SDK's job counters say the same, and once it is back every item
    succeeds (none failed, none painted twice)."""
    from storytelling.client import Client, job_spec

    address, service = services
    service.render.down.set()
    with Client(address) as client:
        job = client.create_job(job_spec(2, seed=3))
        deadline = time.monotonic() + 30
        while True:
            status = storytelling("status", job.id, address=address)
            if status.stdout.count("waiting for render since") >= 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert status.returncode == 0, status.stderr
        # The stage line and both items, each with the painter's reason.
        assert status.stdout.count("waiting for render since") == 3, status.stdout
        assert status.stdout.count("UTC: painter restarting") == 3, status.stdout
        render = next(s for s in client.get_job(job.id, items=False).stages if s.stage == 2)
        assert (render.waiting, render.wait.service) == (2, "render")

        service.render.down.clear()
        done = client.wait(job.id)
    assert (done.items_succeeded, done.items_failed) == (2, 0)
    assert dict(service.render.sim.calls) == {0: 1, 1: 1}, "an item painted twice"
