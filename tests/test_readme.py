"""Every command in the README's tables runs in a test or is checked by one.

`COVERAGE` names, for each command, the tests that run it; a command added to a table without one fails
here. Make targets are also checked to run what the README says they run, `make stack` is started,
served and stopped for real, and the product's targets do not switch the hub to offline mode.
"""

from __future__ import annotations

import ast
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storytelling.client import Client

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

COVERAGE: dict[str, list[str]] = {
    "make run": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/client/test_cli.py::test_paint_embedded_runs_the_job_on_a_stack_of_its_own",
        "tests/test_readme.py::test_make_stack_starts_serves_and_stops_cleanly",
    ],
    "make stack": ["tests/test_readme.py::test_make_stack_starts_serves_and_stops_cleanly"],
    "make stack PROFILE=cpu-engines": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/stack/test_cpu_engines.py::test_a_job_on_cpu_engines_runs_every_evaluator_live",
    ],
    "make venv GPU=1": ["tests/test_readme.py::test_make_targets_run_what_the_readme_says"],
    "make test": ["tests/test_readme.py::test_make_targets_run_what_the_readme_says"],
    "make test-fast": ["tests/test_readme.py::test_make_targets_run_what_the_readme_says"],
    "make bench": ["tests/test_readme.py::test_make_targets_run_what_the_readme_says"],
    "make mutation": ["tests/test_readme.py::test_make_targets_run_what_the_readme_says"],
    "make proto": ["tests/test_generated_code.py::test_generated_code_is_up_to_date"],
    "make images": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/cluster/test_images.py::test_make_images_builds_both_images_with_the_engine_there_is",
    ],
    "make observability": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/cluster/test_observability.py::test_generated_files_are_current",
    ],
    "make docs": [
        "tests/test_docs.py::test_configuration_reference_is_up_to_date",
        "tests/stack/test_profiles.py::test_json_schema_export_is_up_to_date_and_validates_every_shipped_file",
    ],
    "make train": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/training/test_end_to_end.py::test_both_stages_trained_resumably_and_exported_adapters",
        "tests/training/test_resume.py::test_a_killed_run_resumes_from_its_last_checkpoint",
    ],
    "make train-report": [
        "tests/test_readme.py::test_make_targets_run_what_the_readme_says",
        "tests/training/test_end_to_end.py::test_the_report_compares_the_storytellers_through_the_services",
    ],
    "storytelling stack up --profile NAME": [
        "tests/client/test_cli.py::test_stack_up_detached_then_down",
        "tests/stack/test_cpu_engines.py::test_a_job_on_cpu_engines_runs_every_evaluator_live",
    ],
    "storytelling stack down": ["tests/client/test_cli.py::test_stack_up_detached_then_down"],
    "storytelling stack plan --profile NAME": [
        "tests/stack/test_stack_commands.py::test_stack_plan_prints_the_memory_plan",
    ],
    "storytelling stack fetch --profile NAME": [
        "tests/stack/test_stack_commands.py::test_stack_fetch_prepares_every_local_model",
    ],
    "storytelling paint -n 8 --seed 7": [
        "tests/client/test_cli.py::test_paint_watches_the_job_and_prints_the_gallery",
        "tests/client/test_cli.py::test_paint_reports_failed_items_with_a_nonzero_exit",
    ],
    "storytelling status JOB_ID": ["tests/client/test_cli.py::test_status_list_and_cancel"],
    "storytelling evaluate DIR": [
        "tests/client/test_cli.py::test_evaluate_a_research_folder",
        "tests/client/test_real_evaluation.py::test_evaluate_a_research_folder_with_the_real_service",
    ],
}

# What each make command must run (from `make -n`).
RECIPES = {
    "make run": "storytelling.cli.main paint --profile offline --data-dir runs --items 3",
    "make stack": "storytelling.stack.local up --profile offline",
    "make stack PROFILE=cpu-engines": "storytelling.stack.local up --profile cpu-engines",
    "make venv GPU=1": "torch==2.13.0 --index-url https://download.pytorch.org/whl/",
    "make test": "pytest -q",
    "make test-fast": 'pytest -q -m "not slow"',
    "make bench": "bench/bench_default_run.py",
    "make mutation": "scripts/mutation.py run",
    "make proto": "scripts/gen_protos.py",
    "make images": "scripts/build_images.sh",
    "make observability": "scripts/observability.py",
    "make docs": "scripts/profile_schema.py",
    "make train": "storytelling.training recipe --run runs/train/offline",
    "make train-report": "storytelling.training report --run runs/train/offline --out docs/mini-storytellers",
}


def readme_commands() -> list[str]:
    """First-column entries of every README table whose first header is `command`."""
    commands, in_table = [], False
    for line in README.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.startswith("|") else []
        if not cells:
            in_table = False
        elif cells[0] == "command":
            in_table = True
        elif in_table and not set(cells[0]) <= set("-: "):
            commands.append(cells[0].strip("`"))
    return commands


def test_every_readme_command_is_covered_by_an_existing_test():
    commands = readme_commands()
    assert len(commands) == len(set(commands)) and set(commands) == set(COVERAGE)
    for command, tests in COVERAGE.items():
        for test in tests:
            path, _, name = test.partition("::")
            tree = ast.parse((ROOT / path).read_text())
            defined = {
                n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
            }
            assert name in defined, f"{command}: {test} does not exist"


@pytest.mark.parametrize("command", sorted(RECIPES))
def test_make_targets_run_what_the_readme_says(command: str):
    dry = subprocess.run(
        [*command.split(), "-n"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    )
    assert RECIPES[command] in dry.stdout, dry.stdout


def test_product_targets_leave_the_hub_online():
    """Offline mode is for tests: `make run` and `make stack` must let a hub id download."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    shown = subprocess.run(
        ["make", "-s", "--eval", "show: ; @echo [$$HF_HUB_OFFLINE][$$TRANSFORMERS_OFFLINE]", "show"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    assert shown.stdout.strip() == "[][]"


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_make_stack_starts_serves_and_stops_cleanly(tmp_path: Path):
    """`make stack` as a user types it (free ports, so it cannot clash with another stack here) serves the
    default run (`make run`'s job: every item done); Ctrl-C reaches make and the launcher, which stops
    every service and exits; make then ends by the signal."""
    process = subprocess.Popen(
        ["make", "stack", f"STACK_ARGS=--ephemeral-ports --data-dir {tmp_path}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 600
        while not any(line.endswith("Ctrl-C stops everything.") for line in lines):
            line = process.stdout.readline()
            assert line or process.poll() is None, "make stack exited:\n" + "".join(lines)
            lines.append(line.rstrip("\n"))
            assert time.monotonic() < deadline, "\n".join(lines)
        assert "StorytellingPainter local stack is up (profile offline):" in lines
        endpoints = dict(
            re.findall(r"^  (story|render|evaluation|orchestrator)\s+(\S+)$", "\n".join(lines), re.M)
        )
        with Client(endpoints["orchestrator"], timeout=10) as client:
            assert list(client.list_jobs(page_size=1)) == []
        # The default run on it: every item done, whatever the weak model wrote.
        painted = subprocess.run(
            [sys.executable, "-m", "storytelling.cli.main", "paint", "-n", "2", "--seed", "3"],
            env={**os.environ, "STORYTELLING_ADDRESS": endpoints["orchestrator"]},
            capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        assert painted.returncode == 0, painted.stdout + painted.stderr
        assert "succeeded: 2 of 2 items succeeded" in painted.stdout
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        rest, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    # make ends by the signal, or with the launcher's status 0 when the clean stop finished first.
    assert process.returncode in (0, -signal.SIGINT), "\n".join(lines) + rest
    assert "stopping..." in rest and "Traceback" not in rest and "interrupted during start-up" not in rest
    for address in endpoints.values():  # every service is gone, its port closed
        host, port = address.rsplit(":", 1)
        with pytest.raises(OSError):
            socket.create_connection((host, int(port)), timeout=2).close()
