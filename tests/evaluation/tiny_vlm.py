"""A tiny randomly initialised Idefics3 (the SmolVLM architecture: SigLIP-style vision tower, pixel
shuffle, Llama decoder), built offline from configs.

RANDOM WEIGHTS: its answers mean nothing. It exists to run the judge and complexity plumbing end to end
through the same loading code as a real checkpoint, in-process (transformers) and behind vLLM's
OpenAI-compatible server. Attention heads are 64 wide because vLLM's CPU attention rejects narrower ones.
Idefics3 rather than LLaVA: vLLM's LLaVA module imports torchvision, which the CPU vLLM venv lacks.
The tokenizer is the WordPiece vocabulary of all-MiniLM-L6-v2 (shipped in a package) plus an image token
and a chat template.
"""

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|{{ message['role'] }}|> "
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' or part['type'] == 'image_url' %}"
    "<image> {% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}"
    " <|end|> {% endfor %}{% if add_generation_prompt %}<|assistant|> {% endif %}"
)
IMAGE_SIZE, PATCH, SCALE = 64, 16, 2
IMAGE_SEQ_LEN = (IMAGE_SIZE // PATCH) ** 2 // SCALE**2


def build_tiny_vlm(target: Path, seed: int = 0) -> Path:
    """Writes config, random safetensors, tokenizer and processor to `target` (idempotent)."""
    if (target / "config.json").is_file():
        return target
    import torch
    from transformers import (
        BertTokenizerFast,
        Idefics3Config,
        Idefics3ForConditionalGeneration,
        Idefics3ImageProcessor,
        Idefics3Processor,
        Idefics3VisionConfig,
        LlamaConfig,
    )

    from storytelling.evaluation.embedder import bundled_minilm_path

    # A decoder takes no segment ids: without this the processor's token_type_ids reach generate().
    tokenizer = BertTokenizerFast.from_pretrained(
        bundled_minilm_path(), model_input_names=["input_ids", "attention_mask"]
    )
    grid = [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
    tokenizer.add_special_tokens({"additional_special_tokens": [
        "<image>", "<fake_token_around_image>", "<global-img>", "<end_of_utterance>",
        "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", *grid,
    ]})  # fmt: skip
    tokenizer.eos_token = "<|end|>"
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
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
            tie_word_embeddings=False,
        ),
        scale_factor=SCALE,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
        tie_word_embeddings=False,
    )  # fmt: skip
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    processor = Idefics3Processor(
        image_processor=Idefics3ImageProcessor(
            size={"longest_edge": IMAGE_SIZE}, max_image_size={"longest_edge": IMAGE_SIZE},
            do_image_splitting=False,
        ),
        tokenizer=tokenizer,
        image_seq_len=IMAGE_SEQ_LEN,
        chat_template=CHAT_TEMPLATE,
    )  # fmt: skip
    staging = target.with_name(target.name + ".tmp")
    model.save_pretrained(staging, safe_serialization=True)
    processor.save_pretrained(staging)
    staging.rename(target)
    return target
