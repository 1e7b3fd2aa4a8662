"""Chunked embeddings for SDXL's two CLIP encoders, on a tiny random SDXL pipeline built from configs
(storytelling.render.tiny, as diffusers' own SDXL tests build theirs), saved and loaded through
DiffusionEngine's from_pretrained."""

import numpy as np
import pytest
import torch
from storytelling.render.diffusion import DiffusionEngine, EngineConfig, Job
from storytelling.render.prompts import encode_chunked
from storytelling.render.tiny import build_sdxl_pipeline

from tests.render.stories import LONG, LONG_OTHER_ENDING, SHORT


@pytest.fixture(scope="module")
def engine(tmp_path_factory) -> DiffusionEngine:
    pipe = build_sdxl_pipeline()
    path = tmp_path_factory.mktemp("tiny-sdxl")
    pipe.save_pretrained(path)
    return DiffusionEngine(EngineConfig(model=str(path), steps=2, guidance_scale=5.0, width=64, height=64))


def test_both_encoders_are_chunked(engine):
    assert type(engine.pipe).__name__ == "StableDiffusionXLPipeline"
    assert [e.penultimate for e in engine.clips] == [True, True]
    a, b = engine.generate([Job(LONG, seed=1), Job(LONG_OTHER_ENDING, seed=1)])
    assert (
        a.metadata["strategy"] == "chunked"
        and a.metadata["encoded_tokens"] == a.metadata["prompt_tokens"] > 77
    )
    assert not np.array_equal(a.image, b.image)  # tokens past the first window reach the image


def test_one_window_matches_the_pipelines_own_encoding(engine):
    embeds = engine._chunked_embeddings([Job(SHORT, negative_prompt="blurry")], windows=1)
    ours = (embeds["prompt_embeds"], embeds["negative_prompt_embeds"], embeds["pooled_prompt_embeds"])
    theirs = engine.pipe.encode_prompt(SHORT, negative_prompt="blurry", device="cpu")
    for mine, reference in zip(ours, (theirs[0], theirs[1], theirs[2]), strict=True):
        torch.testing.assert_close(mine, reference)


def test_empty_negative_prompt_is_zeros_as_in_sdxl(engine):
    embeds = engine._chunked_embeddings([Job(LONG)], windows=engine.clips[0].windows(LONG))
    assert not embeds["negative_prompt_embeds"].any() and not embeds["negative_pooled_prompt_embeds"].any()


def test_pooled_embedding_of_a_long_story_is_its_first_window(engine):
    """The pipeline's own encoding truncates to 77 tokens, the first window: its pooled embedding is the
    reference for ours, however many windows follow (they hold the story's ending)."""
    windows = engine.clips[0].windows(LONG)
    assert windows >= 3
    _, pooled = encode_chunked(engine.clips, [LONG, LONG_OTHER_ENDING, SHORT], windows)
    truncated = engine.pipe.encode_prompt([LONG, SHORT], device="cpu", do_classifier_free_guidance=False)[2]
    torch.testing.assert_close(pooled[0], truncated[0])
    torch.testing.assert_close(pooled[1], truncated[0])  # same first window, other ending
    torch.testing.assert_close(pooled[2], truncated[1])
