"""The storyteller's prompts, written for this project and versioned.

A prompt's version is recorded with every story; any change to the wording gets a new version, so a
story can always be reproduced with the prompt that wrote it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from storytelling.llm import ChatMessage
from storytelling.story.dimensions import DIMENSIONS
from storytelling.api.pools import PoolEntry


class Mode(StrEnum):
    NAIVE = "naive"
    COR_GUIDED = "cor-guided"
    SHORT = "short"


SYSTEM = (
    "You write descriptions of storytelling images: single pictures that tell a whole story through "
    "visual clues that a viewer can reason about."
)

RULES = (
    "Rules:\n"
    "- Describe ONE frozen moment, exactly as the picture shows it. No sequence of events, no 'then', "
    "'later' or 'after that'.\n"
    "- No dialogue or quoted speech: show what people feel through faces, gestures and objects.\n"
    "- One paragraph of 60 to 120 words in plain prose. No title, no list, no introduction."
)

NAIVE_EXAMPLE = (
    "On a rainy afternoon in a small city laundromat, a young father in a delivery uniform sits asleep on "
    "a plastic chair, his cap tipped over his eyes. Beside him his daughter, about six, stands on tiptoe "
    "at an open washing machine, pouring a whole box of powder into the drum. Foam spills over the rim "
    "and spreads across the tiled floor towards an old woman folding towels, who has stopped with a "
    "shirt in mid-air, eyebrows raised. The girl grins proudly at the mountain of bubbles, unaware of the "
    "puddle reaching her father's shoes."
)


# The whole request of the short prompt: what a Mini-Storyteller is trained on (storytelling.training), so
# a small model need not read a thousand-token prompt at every call.
SHORT_INSTRUCTION = "Write a description of a storytelling image."


@dataclass(frozen=True)
class Prompt:
    mode: Mode
    version: str
    description: str

    @property
    def uses_exemplars(self) -> bool:
        return self.mode is Mode.COR_GUIDED

    def render(self, exemplars: Sequence[PoolEntry], theme: str = "") -> list[ChatMessage]:
        if self.mode is Mode.SHORT:
            body = SHORT_INSTRUCTION + (f" Theme: {theme}" if theme else "")
            return [ChatMessage("system", SYSTEM), ChatMessage("user", body)]
        if self.mode is Mode.NAIVE:
            body = f"Write a description of a storytelling image.\n{RULES}\n\nExample:\n{NAIVE_EXAMPLE}"
        else:
            body = _cor_guided_body(exemplars)
        if theme:
            body += f"\n\nTheme of the new picture: {theme}"
        body += "\n\nWrite the new description now."
        return [ChatMessage("system", SYSTEM), ChatMessage("user", body)]


def _cor_guided_body(exemplars: Sequence[PoolEntry]) -> str:
    guide = "\n".join(
        f"{i}. {d.title}: {d.meaning}. Clues: {d.clues}." for i, d in enumerate(DIMENSIONS, start=1)
    )
    examples = "\n\n".join(f"Example {i}:\n{e.story}" for i, e in enumerate(exemplars, start=1))
    return (
        "Write a description of a storytelling image. A viewer should be able to follow chains of "
        "reasoning from visible clues along these seven dimensions:\n"
        f"{guide}\n"
        "Use several dimensions, each shown through concrete visual clues, and connect them: one event "
        "should explain another and show in someone's feelings.\n"
        f"{RULES}\n\n"
        f"{examples}\n\n"
        "Invent a new scene with different people, place and event than the examples."
    )


PROMPTS: dict[Mode, Prompt] = {
    Mode.NAIVE: Prompt(Mode.NAIVE, "naive/1", "One worked example and format rules."),
    Mode.COR_GUIDED: Prompt(
        Mode.COR_GUIDED,
        "cor-guided/1",
        "The seven reasoning dimensions with visual-clue examples, plus k exemplars sampled per request "
        "from a story pool.",
    ),
    Mode.SHORT: Prompt(
        Mode.SHORT,
        "short/1",
        "One instruction and the theme, no rules or exemplars: the prompt Mini-Storytellers are trained on.",
    ),
}
