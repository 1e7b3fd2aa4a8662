"""Fixtures of the training tests: a small pool with both splits and a real evaluation service."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from storytelling.api.pools import builtin_pools
from storytelling.runtime.process import start_service_process
from storytelling.training.records import write_jsonl

POOL = builtin_pools()[0]


@pytest.fixture(scope="session")
def small_pool(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six train and four test stories of the shipped pool, in its JSONL format."""
    train, test = POOL.candidates("train")[:6], POOL.candidates("test")[:4]
    path = tmp_path_factory.mktemp("pool") / "small.jsonl"
    write_jsonl(
        path,
        (
            {
                "id": e.id,
                "story": e.story,
                "dimensions": list(e.dimensions),
                "split": e.split,
                "setting": e.setting,
            }
            for e in [*train, *test]
        ),
    )
    return path


@pytest.fixture(scope="session")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A RANDOM-weight two-layer Llama with SmolLM2's tokenizer and chat template: the same training code
    path as the real base in milliseconds per step, for tests of mechanics (checkpoints, resumption)."""
    import torch
    from storytelling.llm.smollm2 import materialize
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    source = materialize()
    tokenizer = AutoTokenizer.from_pretrained(source)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    target = tmp_path_factory.mktemp("models") / "tiny-llama-random"
    LlamaForCausalLM(config).save_pretrained(target)
    tokenizer.save_pretrained(target)
    return target


@pytest.fixture(scope="session")
def evaluation_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real evaluation service (offline embedder and spaCy, no judge); yields its address."""
    service = start_service_process(
        "storytelling.evaluation", log_path=tmp_path_factory.mktemp("logs") / "evaluation.log"
    )
    try:
        service.wait_serving(600)
        yield service.address
    finally:
        service.stop()
