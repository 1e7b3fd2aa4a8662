"""What a local run starts for itself: an evaluation service, and a server for the model being sampled.

Given addresses, the pipeline uses running services instead (a stack, a cluster). Everything started
here runs in its own process group and is stopped when the run ends.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Literal

from storytelling.client import AsyncEvaluationClient
from storytelling.llm import EngineSpec
from storytelling.runtime.process import start_service_process

Server = Literal["vllm", "embedded"]
# Evaluation requests are long for big sets (embedding every story against the pool).
EVALUATION_TIMEOUT_S = 900.0


@contextlib.contextmanager
def evaluation_address(address: str, log_dir: Path) -> Iterator[str]:
    """`address`, or that of an evaluation service started for the run (offline models, no judge)."""
    if address:
        yield address
        return
    service = start_service_process("storytelling.evaluation", log_path=log_dir / "evaluation.log")
    try:
        service.wait_serving(600)
        yield service.address
    finally:
        service.stop()


@contextlib.asynccontextmanager
async def evaluation_client(address: str) -> AsyncIterator[AsyncEvaluationClient]:
    async with AsyncEvaluationClient(address, timeout=EVALUATION_TIMEOUT_S) as client:
        yield client


@contextlib.contextmanager
def model_servers(
    server: Server, base: str, models: dict[str, Path | None], log_dir: Path, max_model_len: int = 4096
) -> Iterator[dict[str, EngineSpec]]:
    """Engine specs by name for the base model (`None`) and the adapter or full-model directories.

    vLLM serves the base model and every adapter from one server, each adapter under its own name
    (`--enable-lora`); a fully fine-tuned model gets a server of its own. The embedded engine loads each
    in-process with peft instead: no server to start, but one generation at a time.
    """
    if server == "embedded":
        yield {
            name: EngineSpec(kind="embedded", model=base, adapter=str(path))
            if path and is_adapter(path)
            else EngineSpec(kind="embedded", model=str(path or base))
            for name, path in models.items()
        }
        return
    from storytelling.stack.vllm import lora_args, start_vllm

    adapters = {name: path for name, path in models.items() if path and is_adapter(path)}
    full = {name: path for name, path in models.items() if path and not is_adapter(path)}
    base_name = next((name for name, path in models.items() if path is None), "base")
    specs: dict[str, EngineSpec] = {}
    with contextlib.ExitStack() as running:
        shared = running.enter_context(
            start_vllm(
                base,
                base_name,
                max_model_len=max_model_len,
                log_path=log_dir / "vllm.log",
                extra_args=lora_args(adapters) if adapters else (),
            )
        )
        for name in [base_name, *adapters]:
            specs[name] = served(shared.base_url, name)
        for name, path in full.items():
            own = running.enter_context(
                start_vllm(path, name, max_model_len=max_model_len, log_path=log_dir / f"vllm-{name}.log")
            )
            specs[name] = served(own.base_url, name)
        yield {name: specs[name] for name in models}


def served(base_url: str, name: str) -> EngineSpec:
    # Requests queue on a CPU server: a generous timeout, and enough in flight to fill vLLM's batch.
    return EngineSpec(kind="openai", base_url=base_url, model=name, max_concurrency=16, timeout_s=1800)


def is_adapter(path: Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()
