"""The GPU profiles' code path on a CUDA machine, with tiny local models and no network.

Run by scripts/gpu_check.sh, which prepares the environment from gpu-carry/. One PASS, FAIL, SKIP or INFO
line per check, details below it; exits 1 if any check failed. Random weights throughout: the checks are
about devices, dtypes, batching, long prompts, memory plans and serving, never image or answer quality.

  gpu-plan         nvidia-smi seen as the profiles see it; gpu-24gb and gpu-80gb checked against it; the
                   vLLM --gpu-memory-utilization each of their servers would get
  painter-sd       DiffusionEngine (the Triton model's engine) on CUDA in fp16: batching, seeds, chunked
                   long prompts, no NaN; images/s at 256x256
  painter-sdxl     the same with the tiny SDXL pipeline (the gpu-24gb painter's architecture)
  triton-numpy2    INFO: the Triton painter with the image's own numpy 2 (the failure being fixed)
  triton-gpu       the Triton painter (deploy/triton, unchanged) placed on the GPU by KIND_AUTO, its Python
                   backend in an execution environment with numpy 1.x (EXECUTION_ENV_PATH); concurrent
                   requests batched
  judge-cuda       the in-process VLM judge (EmbeddedChatEngine) on CUDA: a yes/no verdict scored by
                   P(yes) from log-probabilities, and the complexity evaluator's honest failure on a model
                   that writes no JSON
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import signal
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHORT = "A boy on a tipping stool steals cookies while his mother dries a plate, the sink overflowing."
LONG = " ".join(
    [SHORT]
    + [
        f"Detail {i}: a red kite, a torn map, a crying toddler and a dog chewing a slipper."
        for i in range(12)
    ]
)
failures: list[str] = []
# One entry per check, rewritten to --results after each: a check that hangs past the script's timeout
# still leaves the ones before it on record.
results: list[dict[str, object]] = []
RESULTS: Path | None = None
# "cuda" on the GPU machine; "cpu" rehearses the same checks here (python scripts/gpu_check.py --device cpu).
DEVICE = "cuda"


class CheckTimeout(Exception):
    """A check ran past its time limit."""


def _alarm(signum: int, frame: object) -> None:
    raise CheckTimeout("ran past its time limit")


def check(name: str, run: Callable[[], str], info: bool = False, limit_s: int = 120) -> None:
    """Runs one check within limit_s seconds (SIGALRM), prints its line and records it."""
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(limit_s)
    try:
        status, detail = ("INFO" if info else "PASS"), run()
    except Skip as skip:
        status, detail = "SKIP", str(skip)
    except Exception as error:  # noqa: BLE001 (every check reports; one failure does not stop the others)
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        if info:
            status, detail = "INFO", f"failed as expected without the fix: {reason}"
        else:
            failures.append(name)
            status, detail = "FAIL", reason
            traceback.print_exc(limit=6, file=sys.stdout)
    finally:
        signal.alarm(0)
    seconds = time.perf_counter() - start
    print(f"{status} {name} ({seconds:.1f} s): {detail}", flush=True)
    record(name, status, detail, seconds)


def record(name: str, status: str, detail: str, seconds: float = 0.0) -> None:
    results.append({"check": name, "status": status, "seconds": round(seconds, 1), "detail": detail})
    if RESULTS is not None:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        passed = not failures
        RESULTS.write_text(json.dumps({"passed": passed, "checks": results}, indent=2) + "\n")


class Skip(Exception):
    """The check cannot run here; the reason says why."""


def gpu_plan() -> str:
    import torch

    try:
        from storytelling.stack.models import ResolvedModel, check_gpu, detect_gpus
        from storytelling.stack.profiles import load_profile
        from storytelling.stack.wiring import plan_engines
    except ImportError as error:
        raise Skip(f"profile code needs {error.name}") from None
    gpus = detect_gpus()
    assert gpus, "nvidia-smi reported no GPU"
    total = torch.cuda.get_device_properties(0).total_memory / (1 << 30)
    assert abs(gpus[0].memory_gib - total) < 1.0, (
        f"nvidia-smi {gpus[0].memory_gib:.1f} GiB, torch {total:.1f}"
    )
    lines = [f"{gpus[0].name}, {gpus[0].memory_gib:.1f} GiB"]
    for name in ("gpu-24gb", "gpu-80gb"):
        profile = load_profile(name)
        gpu = check_gpu(profile, gpus)
        models = {
            role: ResolvedModel(role, m.model, Path("/models") / role, False, m.weights_gib, {})
            for role, m in profile.models().items()
        }
        plan = plan_engines(profile, models, gpu)
        fractions = ", ".join(f"{v.role} {v.options['gpu_memory_utilization']}" for v in plan.vllm)
        lines.append(f"{name}: vLLM --gpu-memory-utilization {fractions}")
    return "; ".join(lines)


def painter(build: Callable[[], object], work: Path, name: str) -> str:
    import numpy as np
    import torch
    from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job

    path = work / name
    if not path.exists():
        build().save_pretrained(path)  # type: ignore[attr-defined]
    config = EngineConfig(model=str(path), steps=4, guidance_scale=5.0, width=256, height=256, device=DEVICE)
    engine = DiffusionEngine(config)
    expected = torch.float16 if DEVICE == "cuda" else torch.float32
    assert engine.device.type == DEVICE and engine.dtype == expected, (engine.device, engine.dtype)
    a, long, b = engine.generate([Job(SHORT, seed=1), Job(LONG, seed=2), Job(SHORT, seed=1)])
    assert a.metadata["batch_size"] == 2 and np.array_equal(a.image, b.image), "seeds or batching broke"
    assert long.metadata["strategy"] == "chunked" and long.metadata["encoded_tokens"] > 77, long.metadata
    assert a.image.std() > 0 and np.isfinite(a.image).all(), "fp16 collapsed to a flat image"
    if DEVICE == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    outs = engine.generate([Job(SHORT, seed=s) for s in range(8)])
    rate = len(outs) / (time.perf_counter() - start)
    return (
        f"{type(engine.pipe).__name__} on {a.metadata['device']} {a.metadata['dtype']}, long prompt "
        f"{long.metadata['encoded_tokens']} tokens encoded, {rate:.1f} images/s at 256x256x4 steps (batch 8)"
    )


def painter_sd(work: Path) -> str:
    from storytelling.render.tiny import build_pipeline

    return painter(build_pipeline, work, "tiny-sd")


def painter_sdxl(work: Path) -> str:
    from storytelling.render.tiny import build_sdxl_pipeline

    return painter(build_sdxl_pipeline, work, "tiny-sdxl")


def triton_repository(work: Path, name: str, parameters: dict[str, str]) -> Path:
    """The deployment's painter model, copied with its config.pbtxt parameters set (text level: the check
    runs without tritonclient's protobuf classes, which the launcher's prepare_repository uses)."""
    repository = work / name
    shutil.rmtree(repository, ignore_errors=True)
    shutil.copytree(ROOT / "deploy" / "triton" / "model_repository" / "painter", repository / "painter")
    config = repository / "painter" / "config.pbtxt"
    text = config.read_text()
    for key, value in parameters.items():
        entry = f'{{ key: "{key}", value: {{ string_value: "{value}" }} }}'
        pattern = re.compile(rf'\{{ key: "{key}", value: \{{ string_value: "[^"]*" \}} \}}')
        text, found = pattern.subn(entry, text)
        if not found:
            text = text.replace("parameters [\n", f"parameters [\n  {entry},\n", 1)
    config.write_text(text)
    return repository


def infer(url: str, prompt: str, seed: int) -> dict:
    inputs = [
        {"name": "PROMPT", "shape": [1, 1], "datatype": "BYTES", "data": [prompt]},
        {"name": "SEED", "shape": [1, 1], "datatype": "INT64", "data": [seed]},
    ]
    body = json.dumps({"inputs": inputs, "outputs": [{"name": "METADATA"}]}).encode()
    request = urllib.request.Request(
        f"{url}/v2/models/painter/infer", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        outputs = json.loads(response.read())["outputs"]
    return json.loads(outputs[0]["data"][0])


def triton_painter(work: Path, execution_env: Path | None) -> str:
    from storytelling.stack.triton import start

    parameters = {"model": str(work / "tiny-sd"), "steps": "4", "width": "256", "height": "256"}
    if execution_env is not None:
        parameters["EXECUTION_ENV_PATH"] = str(execution_env)
    name = "triton-env" if execution_env else "triton-numpy2"
    repository = triton_repository(work, name, parameters)
    server = start(repository, ["painter"], work / f"{name}-run", ready_timeout=120)
    try:
        if DEVICE == "cuda":
            assert "GPU device 0" in server.log_tail(400_000), "the instance was not placed on a GPU"
        metadata = infer(server.http_url, SHORT, 3)
        expected = ("cuda:0", "float16") if DEVICE == "cuda" else ("cpu", "float32")
        assert (metadata["device"], metadata["dtype"]) == expected, metadata
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda s: infer(server.http_url, SHORT, s), range(16)))
        with urllib.request.urlopen(f"{server.http_url}/v2/models/painter/stats", timeout=30) as response:
            stats = json.loads(response.read())["model_stats"][0]
        batch = int(stats["inference_count"]) / int(stats["execution_count"])
        assert len(results) == 16 and batch > 1, f"average batch {batch:.2f}"
        return f"painter on {metadata['device']} {metadata['dtype']}, 16 concurrent requests, average batch {batch:.2f}"
    except Exception as error:
        raise RuntimeError(f"{error}; server log: {server.log_tail(1500)}") from error
    finally:
        server.stop()


def judge_cuda(work: Path, tokenizer: Path) -> str:
    try:
        from storytelling.evaluation.complexity import ComplexityEvaluator
        from storytelling.evaluation.images import check_image
        from storytelling.evaluation.jsonout import OutputError
        from storytelling.evaluation.judge import Judge
        from storytelling.evaluation.tiny_vlm import build_tiny_vlm
        from storytelling.llm.embedded import EmbeddedChatEngine
    except ImportError as error:
        raise Skip(f"evaluation code needs {error.name}") from None
    import io

    from PIL import Image

    model = build_tiny_vlm(work / "tiny-idefics3", tokenizer=tokenizer)
    buffer = io.BytesIO()
    Image.new("RGB", (80, 60), (200, 30, 30)).save(buffer, "PNG")
    image = check_image(buffer.getvalue())
    engine = EmbeddedChatEngine(model, device=DEVICE)

    async def run() -> tuple:
        verdict = await Judge(engine, top_logprobs=5).judge(image, "There is a boy holding a box of cookies.")
        try:
            await ComplexityEvaluator(engine, max_repairs=0, max_tokens=16).evaluate(image)
            complexity = "parsed"
        except OutputError as error:
            complexity = f"failed honestly ({error.errors[0][:60]}...)"
        return verdict, complexity

    verdict, complexity = asyncio.run(run())
    device = next(engine._loaded[1].parameters()).device
    assert device.type == DEVICE, device
    assert 0.0 <= verdict.score <= 1.0 and engine.random_weights
    return f"verdict {verdict.score:.2f} (from logprobs: {verdict.from_logprobs}) on {device}; complexity {complexity}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work", type=Path, required=True, help="scratch directory")
    parser.add_argument("--carry", type=Path, required=True, help="the gpu-carry directory")
    parser.add_argument("--execution-env", type=Path, default=None, help="venv with numpy<2 for Triton")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda", help="cpu: a rehearsal")
    parser.add_argument("--results", type=Path, default=None, help="JSON file: one entry per check")
    args = parser.parse_args()
    global DEVICE, RESULTS
    DEVICE, RESULTS = args.device, args.results
    import numpy
    import torch

    print(
        f"python {sys.version.split()[0]}, torch {torch.__version__} (CUDA {torch.version.cuda}), "
        f"numpy {numpy.__version__}",
        flush=True,
    )
    if DEVICE == "cuda" and not torch.cuda.is_available():
        failures.append("cuda")
        print("FAIL cuda: torch sees no CUDA device")
        record("cuda", "FAIL", "torch sees no CUDA device")
        return 1
    if DEVICE == "cuda":
        check("gpu-plan", gpu_plan)
    check("painter-sd", lambda: painter_sd(args.work))
    check("painter-sdxl", lambda: painter_sdxl(args.work))
    if args.execution_env is None:
        check("triton-gpu", lambda: (_ for _ in ()).throw(Skip("no pytriton in gpu-carry")))
    else:
        if not numpy.__version__.startswith("1."):
            check("triton-numpy2", lambda: triton_painter(args.work, None), info=True, limit_s=60)
        check("triton-gpu", lambda: triton_painter(args.work, args.execution_env), limit_s=150)
    check("judge-cuda", lambda: judge_cuda(args.work, args.carry / "smollm2-tokenizer"))
    print(f"{'FAILED: ' + ', '.join(failures) if failures else 'ALL PASSED'}", flush=True)
    if RESULTS is not None:
        record("summary", "FAIL" if failures else "PASS", ", ".join(failures) or "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
