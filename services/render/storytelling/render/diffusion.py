"""One diffusers text-to-image pipeline that paints batches of jobs.

Shared by the Triton Python-backend model (deploy/triton) and the embedded painter, so both load
weights, handle long prompts and seed the noise the same way. A pipeline is not thread-safe (its
scheduler keeps per-call state): each engine owns one and callers serialise calls to `generate`.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from storytelling.render.prompts import ChunkedClipEncoder, TokenCount, encode_chunked
from storytelling.render.tiny import TINY_RANDOM, ensure_tiny_pipeline
from storytelling.runtime.checkpoints import is_random

log = logging.getLogger(__name__)

T5_MAX_TOKENS = 512  # SD3 and FLUX accept max_sequence_length up to 512


@dataclass(frozen=True)
class EngineConfig:
    """Where the weights are and the defaults a job may override (config.pbtxt parameters)."""

    model: str  # local directory, hub id, or "tiny-random" (storytelling.render.tiny, built on demand)
    scheduler: str = ""  # diffusers scheduler class name; empty keeps the checkpoint's
    steps: int = 25
    guidance_scale: float = 7.5
    width: int = 512
    height: int = 512
    dtype: str = "auto"  # auto: float16 on CUDA, float32 on CPU
    device: str = "auto"  # auto, cpu, cuda, cuda:N
    variant: str = ""  # weight files to load ("fp16": *.fp16.safetensors); empty: the default ones
    lora: tuple[LoraAdapter, ...] = ()  # fused into the pipeline at load


@dataclass(frozen=True)
class LoraAdapter:
    name: str
    path: str  # a local directory or file of LoRA weights (diffusers or kohya format)
    scale: float = 1.0


@dataclass(frozen=True)
class Job:
    """One image to paint; None takes the engine default."""

    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int | None = None
    guidance_scale: float | None = None
    width: int | None = None
    height: int | None = None


@dataclass(frozen=True)
class Output:
    image: np.ndarray  # uint8, (height, width, 3)
    metadata: dict


# Called after each denoising step with (job indices of the batch, step, total steps); returning True
# stops the batch early (its callers are gone), after which the pipeline decodes and returns as usual.
OnStep = Callable[[list[int], int, int], bool | None]


@dataclass(frozen=True)
class LongEncoder:
    """A text encoder that reads far more than CLIP's 77 tokens: T5 (SD3, FLUX, PixArt) or an LLM
    (Z-Image, FLUX.2, Sana, Lumina 2). The pipeline takes `max_sequence_length` up to `window`."""

    tokenizer: object
    window: int
    strategy: str  # "t5" or "llm" (Image.long_prompt_strategy)


def long_encoder(pipe) -> LongEncoder | None:
    """The pipeline's long-window encoder, found by its `max_sequence_length` argument; None for CLIP-only
    pipelines (chunked instead) and pipelines that truncate."""
    parameter = inspect.signature(type(pipe).__call__).parameters.get("max_sequence_length")
    if parameter is None:
        return None
    for name in ("tokenizer_3", "tokenizer_2", "tokenizer"):  # SD3 keeps T5 third, FLUX second, PixArt first
        tok = getattr(pipe, name, None)
        if tok is not None and "T5" in type(tok).__name__:
            return LongEncoder(tok, T5_MAX_TOKENS, "t5")
    tok = getattr(pipe, "tokenizer", None)
    if tok is None or "CLIP" in type(tok).__name__ or not isinstance(parameter.default, int):
        return None
    return LongEncoder(tok, parameter.default, "llm")


def _fuse_lora(pipe, adapters: tuple[LoraAdapter, ...]) -> None:
    """Loads the adapters, fuses them at their scales into the base weights (no per-step LoRA cost) and
    drops the adapter layers."""
    try:
        for adapter in adapters:
            pipe.load_lora_weights(adapter.path, adapter_name=adapter.name)
    except ValueError as error:  # diffusers says "PEFT backend is required" without peft
        raise ValueError(f"lora {adapter.name!r} ({adapter.path}): {error}") from error
    pipe.set_adapters([a.name for a in adapters], adapter_weights=[a.scale for a in adapters])
    pipe.fuse_lora(adapter_names=[a.name for a in adapters])
    pipe.unload_lora_weights()


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    return getattr(torch, dtype)


class DiffusionEngine:
    """Loads a pipeline with `from_pretrained` (real checkpoint or tiny random one alike) and paints."""

    def __init__(self, config: EngineConfig) -> None:
        import diffusers

        self.config = config
        self.device = resolve_device(config.device)
        self.dtype = resolve_dtype(config.dtype, self.device)
        self.model_path = str(ensure_tiny_pipeline()) if config.model == TINY_RANDOM else config.model
        self.random_weights = is_random(self.model_path)
        options = {"variant": config.variant} if config.variant else {}
        pipe = diffusers.AutoPipelineForText2Image.from_pretrained(
            self.model_path, dtype=self.dtype, **options
        )
        if config.lora:
            _fuse_lora(pipe, config.lora)
        if config.scheduler:
            pipe.scheduler = getattr(diffusers, config.scheduler).from_config(pipe.scheduler.config)
        pipe.set_progress_bar_config(disable=True)
        self.pipe = pipe.to(self.device)
        self.clips = self._chunked_encoders(pipe)
        self.long = long_encoder(pipe)
        self._call_options = set(inspect.signature(type(pipe).__call__).parameters)
        log.info("loaded %s (%s) on %s as %s", self.model_path, type(pipe).__name__, self.device, self.dtype)

    @staticmethod
    def _chunked_encoders(pipe) -> list[ChunkedClipEncoder]:
        """CLIP-only pipelines (SD 1.x/2.x, SD-Turbo: one encoder; SDXL: two) take chunked embeddings."""
        pairs = [
            (getattr(pipe, tok, None), getattr(pipe, enc, None))
            for tok, enc in (("tokenizer", "text_encoder"), ("tokenizer_2", "text_encoder_2"))
        ]
        pairs = [(tok, enc) for tok, enc in pairs if enc is not None]
        if getattr(pipe, "text_encoder_3", None) is not None or not pairs:
            return []
        if not all("CLIP" in type(enc).__name__ for _, enc in pairs):
            return []
        penultimate = hasattr(pipe, "text_encoder_2")  # SDXL (and its refiner) read the penultimate layer
        return [ChunkedClipEncoder(tok, enc, penultimate) for tok, enc in pairs]

    def count_tokens(self, prompt: str) -> TokenCount:
        if self.clips:
            return self.clips[0].count(prompt)
        if self.long is not None:
            n = len(self.long.tokenizer(prompt, truncation=False).input_ids)
            return TokenCount(
                prompt_tokens=n, encoded_tokens=min(n, self.long.window), strategy=self.long.strategy
            )
        # Any other pipeline truncates to its tokenizer's window, and the counts say so.
        tok = self.pipe.tokenizer
        n = len(tok(prompt, add_special_tokens=False, truncation=False).input_ids)
        return TokenCount(prompt_tokens=n, encoded_tokens=min(n, tok.model_max_length - 2), strategy="none")

    def resolved(self, job: Job) -> Job:
        c = self.config
        return Job(
            prompt=job.prompt,
            negative_prompt=job.negative_prompt,
            seed=job.seed,
            steps=job.steps or c.steps,
            guidance_scale=c.guidance_scale if job.guidance_scale is None else job.guidance_scale,
            width=job.width or c.width,
            height=job.height or c.height,
        )

    def _batch_key(self, job: Job) -> tuple:
        """Jobs with equal keys run in one pipeline call."""
        windows = 0
        if self.clips:  # equal window counts keep each image independent of its batch mates
            windows = max(self.clips[0].windows(job.prompt), self.clips[0].windows(job.negative_prompt))
        return (job.steps, job.guidance_scale, job.width, job.height, windows)

    def generate(self, jobs: list[Job], on_step: OnStep | None = None) -> list[Output]:
        """Paints all jobs, grouping compatible ones into one batched pipeline call each."""
        resolved = [self.resolved(job) for job in jobs]
        groups: dict[tuple, list[int]] = {}
        for i, job in enumerate(resolved):
            groups.setdefault(self._batch_key(job), []).append(i)
        outputs: list[Output | None] = [None] * len(jobs)
        for key, indices in groups.items():
            batch = [resolved[i] for i in indices]
            for i, out in zip(indices, self._run(batch, key[-1], indices, on_step), strict=True):
                outputs[i] = out
        return outputs  # type: ignore[return-value]

    @torch.inference_mode()
    def _run(
        self, batch: list[Job], windows: int, indices: list[int], on_step: OnStep | None
    ) -> list[Output]:
        first = batch[0]
        kwargs: dict = {}
        if self.clips:
            kwargs.update(self._chunked_embeddings(batch, windows))
        else:
            kwargs["prompt"] = [j.prompt for j in batch]
            if "negative_prompt" in self._call_options:  # FLUX.2 has none
                kwargs["negative_prompt"] = [j.negative_prompt for j in batch]
            if self.long is not None and self.long.strategy == "t5":
                longest = max(len(self.long.tokenizer(j.prompt).input_ids) for j in batch)
                kwargs["max_sequence_length"] = min(self.long.window, max(longest, 77))
        if on_step is not None:

            def callback(pipe, step: int, timestep, tensors: dict) -> dict:
                if on_step(indices, step + 1, first.steps):
                    pipe._interrupt = True  # the documented way to stop a diffusers pipeline from a callback
                return tensors

            kwargs["callback_on_step_end"] = callback
        # One generator per sample: an image depends on its own seed, not on its batch mates.
        generators = [torch.Generator(device="cpu").manual_seed(j.seed) for j in batch]
        pixels = self.pipe(
            num_inference_steps=first.steps,
            guidance_scale=first.guidance_scale,
            width=first.width,
            height=first.height,
            generator=generators,
            output_type="np",
            **kwargs,
        ).images
        images = (np.clip(pixels, 0.0, 1.0) * 255).round().astype(np.uint8)
        return [
            Output(image=img, metadata=self._metadata(job, len(batch)))
            for img, job in zip(images, batch, strict=True)
        ]

    def _chunked_embeddings(self, batch: list[Job], windows: int) -> dict:
        embeds, pooled = encode_chunked(self.clips, [j.prompt for j in batch], windows)
        negative, negative_pooled = encode_chunked(self.clips, [j.negative_prompt for j in batch], windows)
        if pooled is None:  # SD 1.x/2.x
            return {"prompt_embeds": embeds.to(self.dtype), "negative_prompt_embeds": negative.to(self.dtype)}
        if self.pipe.config.get("force_zeros_for_empty_prompt", False):  # SDXL: no negative prompt = zeros
            empty = torch.tensor([not j.negative_prompt for j in batch], device=negative.device)
            negative = torch.where(empty[:, None, None], torch.zeros_like(negative), negative)
            negative_pooled = torch.where(empty[:, None], torch.zeros_like(negative_pooled), negative_pooled)
        return {
            "prompt_embeds": embeds.to(self.dtype),
            "negative_prompt_embeds": negative.to(self.dtype),
            "pooled_prompt_embeds": pooled.to(self.dtype),
            "negative_pooled_prompt_embeds": negative_pooled.to(self.dtype),
        }

    def _metadata(self, job: Job, batch_size: int) -> dict:
        count = self.count_tokens(job.prompt)
        return {
            **asdict(count),
            "seed": job.seed,
            "steps": job.steps,
            "guidance_scale": job.guidance_scale,
            "width": job.width,
            "height": job.height,
            "model": self.model_path,
            "pipeline": type(self.pipe).__name__,
            "scheduler": type(self.pipe.scheduler).__name__,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "random_weights": self.random_weights,
            "batch_size": batch_size,
        }
