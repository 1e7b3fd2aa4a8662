"""A tiny randomly initialised Idefics3 (the SmolVLM architecture: SigLIP-style vision tower, pixel
shuffle, Llama decoder), built offline from configs.

RANDOM WEIGHTS: its answers mean nothing, and the directory is marked so (storytelling.runtime.checkpoints),
so every result it produces says so. It runs the judge and complexity plumbing end to end through the same
loading code as a real checkpoint, in-process (transformers) and behind vLLM's OpenAI-compatible server
(the `cpu-engines` profile and the tests). Attention heads are 64 wide because vLLM's CPU attention
rejects narrower ones; Idefics3 rather than LLaVA because vLLM's LLaVA module imports torchvision, which
the CPU vLLM venv lacks. The tokenizer is SmolLM2's byte-level BPE (as in the real SmolVLM) plus the image
tokens: vLLM's structured-output grammars need a tokenizer whose vocabulary they can decode.
"""

from __future__ import annotations

from pathlib import Path

from storytelling.runtime.checkpoints import build_once, is_random, mark_random
from storytelling.runtime.paths import cache_dir

NAME = "tiny-idefics3-random-v2"
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' or part['type'] == 'image_url' %}"
    "<image>{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
IMAGE_SIZE, PATCH, SCALE = 64, 16, 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH) ** 2 // SCALE**2


def ensure_tiny_vlm(root: Path | None = None) -> Path:
    """Builds the model once into the cache (atomically) and returns its directory."""
    return build_tiny_vlm((root or cache_dir() / "judges") / NAME)


def build_tiny_vlm(target: Path, seed: int = 0, tokenizer: Path | None = None) -> Path:
    """Writes config, random safetensors, tokenizer, processor and the random-weights marker to `target`
    (idempotent; a crash never leaves half a model there). `tokenizer`: a directory with SmolLM2's
    tokenizer files; default: the offline SmolLM2 model (storytelling.llm.smollm2)."""

    def write(directory: Path) -> None:
        _write(directory, seed, tokenizer)
        mark_random(directory, __name__)

    return build_once(target, write, is_random)


def _write(directory: Path, seed: int, tokenizer_dir: Path | None) -> None:
    import torch
    from transformers import (
        AutoTokenizer,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    if tokenizer_dir is None:
        from storytelling.llm.smollm2 import materialize

        tokenizer_dir = materialize()
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>", *grid,
    ]})  # fmt: skip
    tokenizer.chat_template = CHAT_TEMPLATE
    vocab = len(tokenizer) + (-len(tokenizer)) % 64
    config = Idefics3Config(
        vision_config=Idefics3VisionConfig(
            hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
            image_size=IMAGE_SIZE, patch_size=PATCH,
        ),
        text_config=LlamaConfig(
            hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
            num_key_value_heads=2, head_dim=64, vocab_size=vocab, max_position_embeddings=4096,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=False,
        ),
        scale_factor=SCALE,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": IMAGE_SIZE}, max_image_size={"longest_edge": IMAGE_SIZE},
            do_image_splitting=False,
        ),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )  # fmt: skip
    model.save_pretrained(directory, safe_serialization=True)
    processor.save_pretrained(directory)
