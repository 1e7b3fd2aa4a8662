"""Chunked prompt embeddings with the tiny pipeline's real CLIP tokenizer and (random) text encoder."""

import copy

import pytest
import torch
from storytelling.render.prompts import ChunkedClipEncoder, TokenCount, encode_chunked
from storytelling.render.tiny import build_pipeline

from tests.render.stories import LONG, LONG_OTHER_ENDING, SHORT


@pytest.fixture(scope="module")
def pipe():
    return build_pipeline()


@pytest.fixture(scope="module")
def encoder(pipe) -> ChunkedClipEncoder:
    return ChunkedClipEncoder(pipe.tokenizer, pipe.text_encoder)


def test_long_story_is_counted_whole_and_chunked(encoder):
    """LONG is 171 CLIP tokens: windows of 75 + 75 + 21, each wrapped in BOS/EOS to 77 positions."""
    count = encoder.count(LONG)
    assert (count.prompt_tokens, count.encoded_tokens, count.strategy) == (171, 171, "chunked")
    assert encoder.windows(LONG) == 3 and encoder.windows(SHORT) == 1 and encoder.windows("") == 1
    assert encoder.encode([LONG], 3)[0].shape == (1, 3 * 77, 32)


def test_short_prompt_matches_the_pipelines_own_encoding(pipe):
    encoder = ChunkedClipEncoder(pipe.tokenizer, pipe.text_encoder)  # by default the last layer, as SD 1.x
    ours, pooled = encoder.encode([SHORT], windows=1)
    theirs, _ = pipe.encode_prompt(SHORT, torch.device("cpu"), 1, False)
    assert ours.shape == theirs.shape == (1, 77, 32) and pooled is None  # no projection in SD 1.x
    torch.testing.assert_close(ours, theirs)
    assert encoder.count(SHORT).strategy == "none"


def test_tokens_beyond_77_change_the_embedding(encoder):
    windows = encoder.windows(LONG)
    assert windows == encoder.windows(LONG_OTHER_ENDING) >= 3
    (a, b), _ = encoder.encode([LONG, LONG_OTHER_ENDING], windows)
    assert a.shape == (windows * 77, 32)
    torch.testing.assert_close(a[:77], b[:77])  # the first window (what CLIP alone would see) is identical
    assert not torch.allclose(a[77:], b[77:])  # the endings reach the encoder


def test_negative_prompt_is_padded_to_the_prompts_length(encoder):
    windows = encoder.windows(LONG)
    negative, _ = encoder.encode([""], windows)
    assert negative.shape == encoder.encode([LONG], windows)[0].shape
    torch.testing.assert_close(negative[:, 77:154], negative[:, :77])  # padding windows are empty prompts


def test_a_prompt_of_exactly_one_window_is_not_chunked(encoder):
    assert encoder.count("a " * 75) == TokenCount(prompt_tokens=75, encoded_tokens=75, strategy="none")
    assert encoder.count("a " * 76) == TokenCount(prompt_tokens=76, encoded_tokens=76, strategy="chunked")
    assert (encoder.windows("a " * 75), encoder.windows("a " * 76), encoder.windows("a " * 151)) == (1, 2, 3)


def test_a_single_encoder_has_no_pooled_embedding(encoder):
    hidden, pooled = encode_chunked([encoder], [SHORT, LONG], 3)
    assert hidden.shape == (2, 3 * 77, 32) and pooled is None
    torch.testing.assert_close(hidden, encoder.encode([SHORT, LONG], 3)[0])


def test_a_tokenizer_of_another_length_is_refused(pipe):
    tokenizer = copy.copy(pipe.tokenizer)
    tokenizer.model_max_length = 64
    with pytest.raises(ValueError, match=r"^expected a CLIP tokenizer with 77 positions, got 64$"):
        ChunkedClipEncoder(tokenizer, pipe.text_encoder)
