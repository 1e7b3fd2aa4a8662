"""The storyteller's prompts, word for word, per version.

A story records the version of the prompt that wrote it, and a version must always mean the same words:
each version's rendering is committed under tests/story/golden/. Changing the wording means a new version
(prompts.PROMPTS) and a new golden file, never an edit of an old one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from storytelling.llm import ChatMessage
from storytelling.story import prompts
from storytelling.story.prompts import PROMPTS, Mode

GOLDEN = Path(__file__).parent / "golden"
# The pool entry type as the prompts module knows it (the pools module is moving to storytelling.api).
PoolEntry = prompts.PoolEntry
EXEMPLARS = (
    PoolEntry("p1", "A boy in a paper crown blows out seven candles while his grandmother claps."),
    PoolEntry("p2", "A referee holds up a red card as the goalkeeper kneels in the mud."),
)


def _as_text(messages: list[ChatMessage]) -> str:
    return "".join(f"[{m.role}]\n{m.content}\n" for m in messages)


@pytest.mark.parametrize(
    ("mode", "version", "theme", "golden"),
    [
        (Mode.NAIVE, "naive/1", None, "naive-1.txt"),
        (Mode.COR_GUIDED, "cor-guided/1", "a harbour at dawn", "cor-guided-1-theme.txt"),
    ],
)
def test_each_version_renders_its_committed_words(mode, version, theme, golden):
    prompt = PROMPTS[mode]
    assert prompt.version == version
    messages = prompt.render(EXEMPLARS) if theme is None else prompt.render(EXEMPLARS, theme)
    assert [m.role for m in messages] == ["system", "user"]
    assert _as_text(messages) == (GOLDEN / golden).read_text()


def test_only_the_cor_guided_prompt_uses_exemplars():
    assert PROMPTS[Mode.COR_GUIDED].uses_exemplars and not PROMPTS[Mode.NAIVE].uses_exemplars
    naive = PROMPTS[Mode.NAIVE].render(EXEMPLARS, "a harbour at dawn")[1].content
    assert "paper crown" not in naive
    assert naive.endswith("\n\nTheme of the new picture: a harbour at dawn\n\nWrite the new description now.")
