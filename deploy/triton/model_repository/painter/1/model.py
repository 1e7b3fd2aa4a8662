"""Triton Python-backend painter: a diffusers text-to-image pipeline, batched and optionally streamed.

One `DiffusionEngine` (one pipeline) per model instance: Triton runs each instance in its own stub
process and calls `execute` serially, so the pipeline is never shared between threads.

Inputs (batch dimension first; each request normally carries one row):
  PROMPT (BYTES, required), NEGATIVE_PROMPT (BYTES), SEED (INT64), STEPS (INT32), GUIDANCE_SCALE (FP32),
  WIDTH (INT32), HEIGHT (INT32). Optional inputs left out, or 0 for STEPS/WIDTH/HEIGHT and NaN for
  GUIDANCE_SCALE, take the defaults from config.pbtxt.
Outputs:
  IMAGE (UINT8, [H, W, 3] RGB pixels: the client encodes PNG/JPEG/WebP), METADATA (BYTES, JSON:
  prompt_tokens, encoded_tokens, strategy, seed, steps, guidance_scale, size, model, random_weights,
  batch_size), and in the decoupled variant PROGRESS (INT32, [step, total_steps]) once per denoising
  step before the final response carrying IMAGE and METADATA.

The same file serves `painter` and the decoupled `painter_stream` (a symlink): the transaction policy
in config.pbtxt decides whether responses are returned or streamed.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass

import numpy as np
import triton_python_backend_utils as pb_utils

# The backend stub embeds Python without reading PYTHONPATH: honour it, so a source checkout (tests, the
# local stack) resolves `storytelling.render` as the installed package does in a production image.
sys.path.extend(p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path)

from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job, LoraAdapter  # noqa: E402


@dataclass(frozen=True)
class Limits:
    max_side: int
    max_steps: int


def _params(model_config: dict) -> dict[str, str]:
    return {k: v["string_value"] for k, v in model_config.get("parameters", {}).items()}


def _device(args: dict, requested: str) -> str:
    """`auto` follows the instance Triton placed: GPU instance -> its CUDA device, else CPU."""
    if requested != "auto":
        return requested
    if args.get("model_instance_kind") == "GPU":
        return f"cuda:{args['model_instance_device_id']}"
    return "auto"


def _lora(value: str) -> tuple[LoraAdapter, ...]:
    """The `lora` parameter: JSON {name: {"path": ..., "scale": ...}}; empty for none."""
    adapters = json.loads(value) if value.strip() else {}
    return tuple(LoraAdapter(name, a["path"], float(a.get("scale", 1.0))) for name, a in adapters.items())


def _column(request, name: str, rows: int) -> list | None:
    tensor = pb_utils.get_input_tensor_by_name(request, name)
    if tensor is None:
        return None
    values = tensor.as_numpy().reshape(-1)
    if len(values) != rows:
        raise ValueError(f"{name}: expected {rows} values (one per PROMPT row), got {len(values)}")
    return [v.decode("utf-8") if isinstance(v, bytes) else v.item() for v in values]


def _jobs(request, limits: Limits) -> list[Job]:
    prompts = [
        p.decode("utf-8") for p in pb_utils.get_input_tensor_by_name(request, "PROMPT").as_numpy().reshape(-1)
    ]
    rows = len(prompts)
    cols = {
        n: _column(request, n, rows)
        for n in ("NEGATIVE_PROMPT", "SEED", "STEPS", "GUIDANCE_SCALE", "WIDTH", "HEIGHT")
    }

    def get(name: str, i: int):
        return None if cols[name] is None else cols[name][i]

    jobs = []
    for i, prompt in enumerate(prompts):
        if not prompt.strip():
            raise ValueError("PROMPT: must not be empty")
        guidance = get("GUIDANCE_SCALE", i)
        job = Job(
            prompt=prompt,
            negative_prompt=get("NEGATIVE_PROMPT", i) or "",
            seed=get("SEED", i) or 0,
            steps=get("STEPS", i) or None,
            guidance_scale=None if guidance is None or math.isnan(guidance) else guidance,
            width=get("WIDTH", i) or None,
            height=get("HEIGHT", i) or None,
        )
        for name, side in (("WIDTH", job.width), ("HEIGHT", job.height)):
            if side is not None and (side % 8 or not 8 <= side <= limits.max_side):
                raise ValueError(f"{name}: must be a multiple of 8 in [8, {limits.max_side}], got {side}")
        if job.steps is not None and not 1 <= job.steps <= limits.max_steps:
            raise ValueError(f"STEPS: must be in [1, {limits.max_steps}], got {job.steps}")
        jobs.append(job)
    return jobs


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = _params(config)
        self.decoupled = pb_utils.using_decoupled_model_transaction_policy(config)
        self.limits = Limits(
            max_side=int(params.get("max_side", 1024)), max_steps=int(params.get("max_steps", 100))
        )
        self.engine = DiffusionEngine(
            EngineConfig(
                model=params["model"],
                scheduler=params.get("scheduler", ""),
                steps=int(params.get("steps", 25)),
                guidance_scale=float(params.get("guidance_scale", 7.5)),
                width=int(params.get("width", 512)),
                height=int(params.get("height", 512)),
                dtype=params.get("dtype", "auto"),
                device=_device(args, params.get("device", "auto")),
                variant=params.get("variant", ""),
                lora=_lora(params.get("lora", "")),
            )
        )

    def execute(self, requests: list) -> list | None:
        """Paints every request of the dynamic batch; compatible rows share one pipeline call."""
        jobs: list[Job] = []
        owners: list[int] = []  # request index of each job
        errors: dict[int, str] = {}
        for r, request in enumerate(requests):
            try:
                rows = _jobs(request, self.limits)
            except (ValueError, AttributeError) as exc:
                errors[r] = str(exc)
                continue
            jobs.extend(rows)
            owners.extend([r] * len(rows))
        senders = [request.get_response_sender() for request in requests] if self.decoupled else []

        def on_step(indices: list[int], step: int, total: int) -> bool:
            """Streams progress; stops the batch once every request in it was cancelled by its client."""
            batch = sorted({owners[i] for i in indices})
            for r in batch:
                progress = pb_utils.Tensor("PROGRESS", np.array([[step, total]], dtype=np.int32))
                senders[r].send(pb_utils.InferenceResponse(output_tensors=[progress]))
            return all(requests[r].is_cancelled() for r in batch)

        try:
            outputs = self.engine.generate(jobs, on_step if self.decoupled else None) if jobs else []
        except Exception as exc:  # a failed pipeline call fails the requests of this execute(), not the model
            outputs = []
            errors.update({r: f"painting failed: {exc!r}" for r in set(owners)})

        responses = []
        for r in range(len(requests)):
            if r in errors:
                response = pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[r]))
            else:
                mine = [out for out, owner in zip(outputs, owners, strict=True) if owner == r]
                image = np.stack([out.image for out in mine])
                metadata = np.array([[json.dumps(out.metadata).encode()] for out in mine], dtype=np.object_)
                response = pb_utils.InferenceResponse(
                    output_tensors=[pb_utils.Tensor("IMAGE", image), pb_utils.Tensor("METADATA", metadata)]
                )
            if self.decoupled:
                senders[r].send(response, flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
            else:
                responses.append(response)
        return None if self.decoupled else responses

    def finalize(self) -> None:
        del self.engine
