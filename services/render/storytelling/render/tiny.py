"""A tiny randomly initialised Stable Diffusion pipeline, built offline the way diffusers tests itself.

No package ships diffusion weights and no hub is reachable, so tests, benchmarks and the local stack
paint with this: a UNet with block_out_channels=(32, 64), a 4-level VAE (8x downsampling like real SD),
a two-layer CLIP text encoder and the real CLIP BPE tokenizer (its merges ship inside open-clip-torch).
It is saved with `save_pretrained` and loaded through the same `from_pretrained` code as a real
checkpoint. Its pictures are noise: a marker file labels the directory as random weights.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

from storytelling.runtime.checkpoints import build_once, is_random, mark_random
from storytelling.runtime.paths import cache_dir

NAME = "tiny-sd-random-v1"
TINY_RANDOM = "tiny-random"  # the model name that selects this pipeline in painter configs


def clip_tokenizer():
    """The CLIP BPE tokenizer (49408 tokens) from the vocabulary file open-clip-torch ships."""
    from transformers import CLIPTokenizer

    spec = importlib.util.find_spec("open_clip")  # locate the package without importing it
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("open-clip-torch is not installed: pip install --no-deps open-clip-torch==3.3.0")
    bpe = Path(spec.submodule_search_locations[0]) / "bpe_simple_vocab_16e6.txt.gz"
    merges = gzip.open(bpe).read().decode("utf-8").split("\n")[1 : 49152 - 256 - 2 + 1]
    byte_chars = _bytes_to_unicode()
    vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m.split()) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    return CLIPTokenizer(
        vocab={token: i for i, token in enumerate(vocab)},
        merges=[tuple(m.split()) for m in merges],
        model_max_length=77,
    )


def _bytes_to_unicode() -> list[str]:
    """CLIP's byte-level alphabet: printable bytes map to themselves, the rest to code points >= 256."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = list(printable)
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


def build_pipeline(seed: int = 0):
    """A StableDiffusionPipeline with tiny random components (deterministic for a given seed)."""
    import torch
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    tokenizer = clip_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=4,
        norm_num_groups=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8, 16, 16),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4,
        norm_num_groups=4,
        layers_per_block=1,
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", steps_offset=1
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def build_sdxl_pipeline(seed: int = 0):
    """A StableDiffusionXLPipeline with tiny random components: two CLIP encoders (the second with a
    projection, as in SDXL) and SDXL's size and crop conditioning, the architecture of the gpu-24gb
    painter, for the tests and the GPU check."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    torch.manual_seed(seed)
    tokenizer = clip_tokenizer()
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, projection_dim=32, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=8, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, addition_embed_type="text_time",
        addition_time_embed_dim=8, projection_class_embeddings_input_dim=6 * 8 + 32, cross_attention_dim=64,
        norm_num_groups=8,
    )  # fmt: skip
    return StableDiffusionXLPipeline(
        vae=build_pipeline().vae,
        text_encoder=CLIPTextModel(config),
        text_encoder_2=CLIPTextModelWithProjection(config),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer,
        unet=unet,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear"),
    )


def ensure_tiny_pipeline(root: Path | None = None) -> Path:
    """Builds and saves the tiny pipeline once (atomically); returns its directory."""
    target = (root or cache_dir() / "painters") / NAME

    def write(directory: Path) -> None:
        build_pipeline().save_pretrained(directory)
        mark_random(directory, __name__)

    return build_once(target, write, is_random)
