"""Fixtures of the evaluation tests: images and recorded LLM outputs. The real embedder and the tiny random
VLM (in process and on vLLM) are session fixtures shared with other tests (tests/engines)."""

import io
from collections.abc import Sequence

import pytest
from PIL import Image
from storytelling.evaluation.images import EncodedImage, check_image
from storytelling.llm import ChatMessage, Completion, SamplingParams


def encoded(fmt: str = "PNG", size: tuple[int, int] = (80, 60), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, fmt)
    return buffer.getvalue()


@pytest.fixture
def image() -> EncodedImage:
    return check_image(encoded())


class RecordedChatEngine:
    """Replays recorded LLM outputs in order and keeps the conversations it was sent.

    Stands in for the extractor LLM only where the test is about our handling of given outputs (parsing,
    repair); the engines themselves are tested against real servers in storytelling.llm's tests.
    """

    kind = "recorded"
    endpoint = ""
    random_weights = False
    model = "recorded-outputs"

    def __init__(self, outputs: Sequence[str], by_story: dict[str, str] | None = None) -> None:
        """`outputs` are replayed in order; `by_story` answers a prompt that contains the key instead."""
        self.outputs = list(outputs)
        self.by_story = by_story or {}
        self.conversations: list[list[ChatMessage]] = []
        self.params: list[SamplingParams] = []

    async def start(self) -> None: ...

    async def ready(self) -> tuple[bool, str]:
        return True, ""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self.conversations.append(list(messages))
        self.params.append(params)
        keyed = [out for story, out in self.by_story.items() if story in messages[1].content]
        text = keyed[0] if keyed else self.outputs[min(len(self.conversations), len(self.outputs)) - 1]
        return Completion(text, "stop", 0, 0, self.model)

    async def aclose(self) -> None: ...
