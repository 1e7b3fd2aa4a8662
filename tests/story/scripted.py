"""A ChatEngine that answers from a script: drives the storyteller's rejection and retry logic through
outputs a real model gives only by chance. Engine behaviour itself is tested against real engines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from storytelling.llm import ChatMessage, Completion, SamplingParams

SCENE = (
    "In a crowded school canteen at noon, a dinner lady in a white cap has just dropped a tray of "
    "spaghetti onto the floor, while a small boy with tomato sauce on his shirt stares at her in shock "
    "and his sister covers her mouth to hide a laugh."
)


@dataclass
class ScriptedEngine:
    # Each reply is (text, finish_reason); the last one repeats.
    replies: list[tuple[str, str]] = field(default_factory=lambda: [(SCENE, "stop")])
    delay_s: float = 0.0
    kind: str = "scripted"
    endpoint: str = ""
    random_weights: bool = False
    model: str = "script"
    calls: list[tuple[list[ChatMessage], SamplingParams]] = field(default_factory=list)
    in_flight: int = 0
    peak_in_flight: int = 0

    async def start(self) -> None:
        pass

    async def ready(self) -> tuple[bool, str]:
        return True, ""

    async def chat(self, messages: Sequence[ChatMessage], params: SamplingParams) -> Completion:
        self.calls.append((list(messages), params))
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.in_flight -= 1
        text, finish = self.replies[min(len(self.calls) - 1, len(self.replies) - 1)]
        return Completion(
            text, finish, prompt_tokens=100, completion_tokens=len(text.split()), model=self.model
        )

    async def aclose(self) -> None:
        pass
