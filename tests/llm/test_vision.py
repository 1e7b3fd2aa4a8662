"""Image parts through the one embedded engine, on a tiny RANDOM-weight Idefics3 (plumbing only), and the
OpenAI message format of image parts."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

import pytest
from storytelling.evaluation.tiny_vlm import IMAGE_SEQ_LEN, build_tiny_vlm
from storytelling.llm import ChatMessage, EngineSpec, ImagePart, SamplingParams, TextPart, build_engine
from storytelling.llm.embedded import EmbeddedChatEngine
from storytelling.runtime.errors import Unavailable

from tests.evaluation.conftest import encoded


@pytest.fixture(scope="module")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_vlm(tmp_path_factory.mktemp("models") / "tiny-idefics3-random")


def question(text: str) -> ChatMessage:
    return ChatMessage("user", (ImagePart(encoded("PNG"), "image/png"), TextPart(text)))


def test_image_parts_in_the_openai_format() -> None:
    message = question("Is there a boy?").as_openai()
    image, text = message["content"]
    assert message["role"] == "user" and text == {"type": "text", "text": "Is there a boy?"}
    url = image["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    assert base64.b64decode(url.split(",", 1)[1]) == encoded("PNG")
    assert ChatMessage("user", "plain").as_openai() == {"role": "user", "content": "plain"}


async def test_the_embedded_engine_reads_images_with_a_vision_model(tiny_vlm) -> None:
    engine = build_engine(EngineSpec(kind="embedded", model=str(tiny_vlm)))
    try:
        done = await engine.chat([question("Is there a boy?")], SamplingParams(temperature=0.0, max_tokens=3))
        text_only = await engine.chat(
            [ChatMessage("user", "Is there a boy?")], SamplingParams(temperature=0.0, max_tokens=3)
        )
        # The image's tokens (and the markers around them) reached the model.
        assert done.prompt_tokens >= text_only.prompt_tokens + IMAGE_SEQ_LEN
    finally:
        await engine.aclose()


async def test_closing_stops_a_vision_answer_in_flight_instead_of_returning_it_cut(tiny_vlm) -> None:
    """A judge's answer cut off by a shutdown must not come back as an ordinary length stop."""
    engine = EmbeddedChatEngine(tiny_vlm)
    await engine.start()
    call = asyncio.create_task(
        engine.chat([question("Describe the picture.")], SamplingParams(temperature=0.0, max_tokens=3000))
    )
    await asyncio.sleep(1.0)
    assert not call.done()
    started = time.monotonic()
    await engine.aclose()
    with pytest.raises(Unavailable, match="shutting down"):
        await call
    assert time.monotonic() - started < 10
