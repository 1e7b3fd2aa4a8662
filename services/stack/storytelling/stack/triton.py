"""Runs the real `tritonserver` binary shipped in the nvidia-pytriton wheel (no container needed).

Used by tests, benchmarks and the local stack. The server runs in its own process group, so `stop()`
(SIGTERM, then SIGKILL of the whole group) leaves no orphaned Python-backend stubs behind. Model
repositories are copied with their config parameters rewritten (`prepare_repository`), so one
deployment repository serves SD-Turbo on a GPU node and the tiny random pipeline in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from storytelling.runtime.process import free_ports

REPO_ROOT = Path(__file__).resolve().parents[4]
MODEL_REPOSITORY = REPO_ROOT / "deploy" / "triton" / "model_repository"


def _pytriton_dir() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("pytriton")  # locate the wheel without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("nvidia-pytriton is not installed: pip install --no-deps nvidia-pytriton==0.7.0")
    return Path(spec.submodule_search_locations[0]) / "tritonserver"


def backend_directory(root: Path) -> Path:
    """A backend dir whose python/ links the wheel's backend library, utils and the stub for this Python."""
    server = _pytriton_dir()
    python = root / "python"
    python.mkdir(parents=True, exist_ok=True)
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = [
        server / "backends" / "python" / "libtriton_python.so",
        server / "backends" / "python" / "triton_python_backend_utils.py",
        server / "python_backend_stubs" / version / "triton_python_backend_stub",
    ]
    for src in sources:
        link = python / src.name
        if not link.exists():
            link.symlink_to(src)
    return root


def server_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """PATH, LD_LIBRARY_PATH and PYTHONPATH so the stub runs this venv's interpreter and packages."""
    import storytelling

    env = dict(os.environ)
    site = _pytriton_dir().parents[1]
    libs = [
        sysconfig.get_config_var("LIBDIR"),
        str(site / "nvidia_pytriton.libs"),
        env.get("LD_LIBRARY_PATH", ""),
    ]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in libs if p)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    roots = [
        str(Path(p).resolve().parent) for p in storytelling.__path__
    ]  # every namespace root (render, runtime...)
    env["PYTHONPATH"] = os.pathsep.join([*roots, env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra or {})
    return env


# Parameters Triton's Python backend reads itself rather than the model: the model's config.pbtxt does
# not declare them.
BACKEND_PARAMETERS = frozenset({"EXECUTION_ENV_PATH"})


def prepare_repository(
    target: Path,
    parameters: Mapping[str, Mapping[str, str]] | None = None,
    source: Path = MODEL_REPOSITORY,
    models: list[str] | None = None,
) -> Path:
    """Copies `models` of a repository, rewriting config.pbtxt parameters: {model: {key: value}}.

    Raises ValueError naming a model or parameter the repository does not have (a typo would otherwise
    be ignored by Triton and the default used)."""
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    available = sorted(p for p in source.iterdir() if (p / "config.pbtxt").is_file())
    for name in set(parameters or {}) - {p.name for p in available}:
        raise ValueError(f"parameters.{name}: no model {name!r} in {source}")
    target.mkdir(parents=True, exist_ok=True)
    for model_dir in available:
        if models is not None and model_dir.name not in models:
            continue
        shutil.copytree(model_dir, target / model_dir.name, dirs_exist_ok=True)  # follows symlinks
        config_path = target / model_dir.name / "config.pbtxt"
        config = text_format.Parse(config_path.read_text(), model_config_pb2.ModelConfig())
        for key, value in (parameters or {}).get(model_dir.name, {}).items():
            if key not in config.parameters and key not in BACKEND_PARAMETERS:
                known = ", ".join(sorted(config.parameters))
                raise ValueError(
                    f"parameters.{model_dir.name}.{key}: not a parameter of the model (has {known})"
                )
            config.parameters[key].string_value = str(value)
        config_path.write_text(text_format.MessageToString(config))
    return target


@dataclass
class TritonServer:
    """A running tritonserver process and its endpoints."""

    process: subprocess.Popen
    http_port: int
    grpc_port: int
    metrics_port: int
    log_path: Path
    models: list[str] = field(default_factory=list)
    host: str = "127.0.0.1"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    def log_tail(self, chars: int = 4000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def model_ready(self, model: str) -> bool:
        try:
            with urllib.request.urlopen(f"{self.http_url}/v2/models/{model}/ready", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while not all(self.model_ready(m) for m in self.models):
            if self.process.poll() is not None:
                raise RuntimeError(f"tritonserver exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"models {self.models} not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.25)

    def stop(self, grace: float = 20.0) -> None:
        """SIGTERM (Triton drains and calls finalize()), then SIGKILL of the whole process group."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        with contextlib.suppress(ProcessLookupError):  # stubs left behind by a crashed server
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def start(
    repository: Path,
    models: list[str],
    workdir: Path,
    *,
    http_port: int | None = None,
    grpc_port: int | None = None,
    metrics_port: int | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 120.0,
    args: list[str] | None = None,
    host: str = "127.0.0.1",
    wait: bool = True,
) -> TritonServer:
    """Starts tritonserver with explicit model control, loading `models`, and waits until they are ready
    (with `wait=False` it returns at once: call `wait_ready`).

    `host` is the loopback address to bind (127.0.0.2... let several servers share one port, as replicas
    of one Service do on their pod addresses)."""
    server_dir = _pytriton_dir()
    backends = backend_directory(workdir / "backends")
    log_path = workdir / f"tritonserver-{time.time_ns()}.log"
    spare = iter(free_ports(3))
    ports = {
        "http": http_port or next(spare),
        "grpc": grpc_port or next(spare),
        "metrics": metrics_port or next(spare),
    }
    command = [
        str(server_dir / "bin" / "tritonserver"),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        f"--cache-directory={server_dir / 'caches'}",
        "--model-control-mode=explicit",
        *(f"--load-model={m}" for m in models),
        f"--http-port={ports['http']}",
        f"--grpc-port={ports['grpc']}",
        f"--metrics-port={ports['metrics']}",
        f"--http-address={host}",
        f"--grpc-address={host}",
        f"--metrics-address={host}",
        "--exit-on-error=true",
        "--log-verbose=0",
        *(args or []),
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=server_environment(env),
            start_new_session=True,  # own process group: stop() reaches the stubs too
        )
    server = TritonServer(
        process, ports["http"], ports["grpc"], ports["metrics"], log_path, list(models), host
    )
    if wait:
        server.wait_ready(ready_timeout)
    return server


@contextlib.contextmanager
def triton_server(
    models: list[str],
    parameters: Mapping[str, Mapping[str, str]] | None = None,
    workdir: Path | None = None,
    **kwargs,
) -> Iterator[TritonServer]:
    """A server for `models` of the deployment repository with rewritten parameters; stopped on exit."""
    with contextlib.ExitStack() as stack:
        root = workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="triton-")))
        repository = prepare_repository(root / "model_repository", parameters, models=models)
        server = start(repository, models, root, **kwargs)
        stack.callback(server.stop)
        yield server


def main(argv: list[str] | None = None) -> int:
    """`python -m storytelling.stack.triton prepare`: writes a model repository with rewritten parameters
    (the painter image's init container runs it, so a cluster and a laptop configure Triton alike)."""
    import argparse
    import json

    parser = argparse.ArgumentParser(prog="python -m storytelling.stack.triton")
    actions = parser.add_subparsers(dest="action", required=True)
    prepare = actions.add_parser("prepare", help="copy a model repository, rewriting config.pbtxt parameters")
    prepare.add_argument("--source", type=Path, default=MODEL_REPOSITORY, help="repository to copy")
    prepare.add_argument("--target", type=Path, required=True, help="where to write it")
    prepare.add_argument(
        "--parameters", default="{}", help='JSON: {"painter": {"model": "...", "steps": "4"}}'
    )
    prepare.add_argument("--models", default="", help="comma-separated models to copy (default: all)")
    args = parser.parse_args(argv)
    try:
        try:
            parameters = json.loads(args.parameters)
        except json.JSONDecodeError as exc:
            raise ValueError(f"parameters: not valid JSON: {exc}") from None
        if not isinstance(parameters, dict) or not all(isinstance(v, dict) for v in parameters.values()):
            raise ValueError("parameters: expected a JSON object of models to objects of parameters")
        models = [m for m in args.models.split(",") if m] or None
        prepare_repository(args.target, parameters, args.source, models)
    except (ValueError, OSError) as exc:
        print(f"prepare: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {args.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
