"""Render service settings: env STORYTELLING_RENDER_<FIELD> or --field-name flags."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from storytelling.api.vocabulary import DEFAULT_PORTS
from storytelling.runtime.config import ServiceSettings
from storytelling.runtime.endpoints import check_target


class RenderSettings(ServiceSettings):
    model_config = ServiceSettings.env("RENDER")

    port: int = Field(DEFAULT_PORTS["render"].grpc, ge=0, le=65535, description="gRPC port.")
    metrics_port: int = Field(
        DEFAULT_PORTS["render"].metrics, ge=0, le=65535, description="Prometheus metrics port; 0 disables."
    )
    default_painter: str = Field(
        "sketch", description="Painter used when a request names none: sketch, triton, openai or embedded."
    )
    max_prompt_chars: int = Field(8000, ge=1, description="Longest prompt or negative prompt accepted.")
    max_side: int = Field(1024, ge=64, le=4096, description="Largest width or height any painter may paint.")
    max_steps: int = Field(100, ge=1, le=1000, description="Most denoising steps any painter may run.")
    triton_url: str = Field(
        "",
        description="Triton gRPC address: host:port, dns:///host:port or kubernetes:///service:port (renders "
        "rotate over every replica); empty disables the triton painter.",
    )
    triton_model: str = Field("painter", description="Triton model for unary renders.")
    triton_stream_model: str = Field(
        "painter_stream", description="Decoupled Triton model for streamed progress; empty: no progress."
    )
    openai_base_url: str = Field("", description="OpenAI-compatible image API (…/v1); empty disables it.")
    openai_model: str = Field("gpt-image-1", description="Image model name at the OpenAI-compatible API.")
    openai_api_key: SecretStr = Field(SecretStr(""), description="API key for the image API.")
    openai_timeout_s: float = Field(120.0, gt=0, description="Cap on one image API call.")
    embedded_model: str = Field(
        "", description="Local path, hub id or 'tiny-random' for the in-process painter; empty disables it."
    )
    embedded_steps: int = Field(25, ge=1, description="Default steps of the embedded painter.")
    embedded_guidance_scale: float = Field(7.5, ge=0, description="Default guidance of the embedded painter.")
    embedded_size: int = Field(512, ge=64, description="Default width and height of the embedded painter.")
    embedded_device: str = Field("auto", description="auto, cpu, cuda or cuda:N.")
    embedded_dtype: str = Field(
        "auto", description="auto (float16 on CUDA, float32 on CPU) or a torch dtype."
    )

    @field_validator("triton_url")
    @classmethod
    def _triton_url_parses(cls, value: str) -> str:
        return check_target(value) if value else value
