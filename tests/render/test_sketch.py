"""The offline storyboard fallback: no weights, clearly labelled in pixels and metadata."""

import numpy as np
from storytelling.render.painters.base import PaintJob
from storytelling.render.painters.sketch import SketchPainter, key_elements, sentences

from tests.render.stories import LONG


def job(**kw) -> PaintJob:
    base = dict(prompt=LONG, negative_prompt="", width=512, height=384, steps=0, guidance_scale=0.0, seed=1)
    return PaintJob(**(base | kw))


async def test_sketch_is_a_labelled_storyboard_of_the_story():
    painting = await SketchPainter().paint(job())
    assert painting.image.size == (512, 384)
    assert painting.painter.is_fallback
    assert "fallback sketch, not a diffusion image" in painting.painter.note
    pixels = np.asarray(painting.image)
    assert (pixels[2, :, 0] > 150).all() and (pixels[2, :, 1] < 60).all()  # the red "FALLBACK SKETCH" banner
    assert 0 < painting.encoded_tokens <= painting.prompt_tokens == len(LONG.split())


async def test_sketch_is_deterministic_per_seed():
    a, b, c = [np.asarray((await SketchPainter().paint(job(seed=s))).image) for s in (1, 1, 2)]
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_panels_and_key_elements_come_from_the_story():
    assert len(sentences(LONG)) == 4
    elements = key_elements(LONG)
    assert {"stool", "sink", "jar"} <= set(elements)
    assert "the" not in elements
