"""Configuration of the evaluation service (env `STORYTELLING_EVALUATION_*` or `--flags`)."""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.llm import EngineSpec
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.images import DEFAULT_MAX_PIXELS


class EvaluationSettings(ServiceSettings):
    model_config = ServiceSettings.env("EVALUATION")

    port: int = Field(DEFAULT_PORTS["evaluation"].grpc, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        DEFAULT_PORTS["evaluation"].metrics,
        ge=0,
        le=65535,
        description="Prometheus metrics port; 0 disables.",
    )
    embedder: str = Field(
        "", description="sentence-transformers model directory or hub id; empty: bundled all-MiniLM-L6-v2"
    )
    embed_device: str = Field("cpu", description="torch device of the embedder")
    embed_dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="precision of the embedder: auto is bfloat16 on CPUs with bf16 units (AMX, "
        "AVX512-BF16), about 2.4x faster at >= 0.99 cosine agreement, float32 elsewhere",
    )
    embed_backend: Literal["torch", "openvino"] = Field(
        "torch",
        description="runtime of the embedder: openvino (CPU only) converts the model once, caches it under "
        "$STORYTELLING_CACHE_DIR/openvino and runs it about 2.6x faster than float32 torch",
    )
    knn_device: str = Field("cpu", description="torch device of the exact neighbour search (cpu, cuda)")
    knn_tile_mb: int = Field(256, ge=1, le=65536, description="memory of one similarity tile")
    approximate_above: int = Field(
        50_000,
        ge=0,
        description="on a CPU, sets with more stories use the approximate IVF index (recall measured "
        "and reported); 0 never does. Exact search below it and on a GPU",
    )
    nprobe: int = Field(16, ge=1, description="cells the approximate index scans per story")
    pool_files: list[Path] = Field(
        default_factory=list,
        description='extra story pools (CSV img_id,story or JSONL), named after the file: ["/data/clinic.csv"]',
    )
    default_pool: str = Field(
        "storytelling_v1",
        description="pool for novelty and memorisation, and whose test split gives control key points",
    )
    memorisation_threshold: float = Field(
        0.9,
        gt=0,
        le=1,
        description="cosine similarity to a pool story from which a story counts as memorised",
    )
    default_k: int = Field(5, ge=1, description="neighbours per story when a request gives k = 0")
    extractors: dict[str, EngineSpec] = Field(
        default_factory=dict, description='key-point LLMs by name, JSON: {"vllm": {"kind": "openai", ...}}'
    )
    default_extractor: str = Field(
        "", description="extractor used when a request names none; empty: the first"
    )
    extractor_output: Literal["parsed", "json_schema"] = Field(
        "parsed",
        description="parsed: free text, parsed and repaired (every engine); json_schema: decoding "
        "constrained to the key-point schema (openai engines whose server has structured outputs, as "
        "vLLM), so that small models write valid key points",
    )
    judges: dict[str, EngineSpec] = Field(
        default_factory=dict,
        description="VLM judges (and complexity readers) by name, JSON, built like every engine "
        "(kind openai, or embedded with an image-text-to-text model directory)",
    )
    default_judge: str = Field("", description="judge (and complexity VLM) used when a request names none")
    judge_output: Literal["parsed", "json_schema"] = Field(
        "parsed",
        description="how the complexity VLM writes its clue list: parsed (every engine) or json_schema "
        "(decoding constrained to the clue schema, openai engines whose server has structured outputs)",
    )
    max_repairs: int = Field(1, ge=0, le=5, description="repair requests after an unparseable model output")
    top_logprobs: int = Field(20, ge=1, le=20, description="alternatives asked of the judge per token")
    text_measures: bool = Field(True, description="serve the spaCy text-side measures")
    seed: int = Field(0, description="seed for drawing control key points when a request gives none")
    max_items_in_flight: int = Field(4, ge=1, description="items of a set evaluated at once")
    max_image_pixels: int = Field(
        DEFAULT_MAX_PIXELS,
        ge=1,
        description="largest image accepted, in pixels (width x height); larger ones, decompression "
        "bombs included, get INVALID_ARGUMENT before any pixel is decoded",
    )

    @model_validator(mode="after")
    def _defaults_exist(self) -> "EvaluationSettings":
        for default, engines, name in (
            (self.default_extractor, self.extractors, "default_extractor"),
            (self.default_judge, self.judges, "default_judge"),
        ):
            if default and default not in engines:
                raise ValueError(f"{name} {default!r} is not configured (have {sorted(engines)})")
        for output, engines, name in (
            (self.extractor_output, self.extractors, "extractor_output"),
            (self.judge_output, self.judges, "judge_output"),
        ):
            embedded = sorted(n for n, spec in engines.items() if spec.kind != "openai")
            if output == "json_schema" and embedded:
                raise ValueError(
                    f"{name} json_schema needs openai engines; {', '.join(embedded)} cannot constrain decoding"
                )
        if self.embed_backend == "openvino" and self.embed_device != "cpu":
            raise ValueError(
                f"embed_backend openvino runs on the CPU, not on embed_device {self.embed_device!r}"
            )
        return self
