"""Control key points: statements taken from other stories, which the judge should answer no to.

Every item gets its own controls, drawn from control stories with a generator seeded by (seed, item id),
so an item's controls depend neither on timing nor on the other items of a set. By default the control
stories are the test split of a story pool: held out from prompting, so never one of the item's own
exemplars. Their key points are extracted by the item's extractor and kept per (extractor, story), so a
job pays for each control story once. One key point is drawn per control story; a key point whose
content words mostly occur in the item's story is skipped, because the picture may truly show it.
"""

import asyncio
import hashlib
import random
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from storytelling.evaluation.keypoints import Extraction, ExtractionError, KeyPointText

DEFAULT_CONTROLS = 3
# Control stories extracted beyond the number of controls wanted, in case some yield nothing usable.
SPARE_STORIES = 2
MAX_CACHED = 4096
_WORD = re.compile(r"[a-z]+")
_STOPWORDS = frozenset(
    "a an the is are was were be there of in on at to with and or by for from his her their its this that "
    "these those one two some into onto near next beside behind under over".split()
)


@dataclass(frozen=True)
class ControlStory:
    id: str
    text: str


@dataclass(frozen=True)
class ControlPoint:
    key_point: KeyPointText
    source_story_id: str


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2}


def plausible_in(key_point: KeyPointText, story: str) -> bool:
    """Whether at least half the key point's content words occur in `story`."""
    words = content_words(key_point.text)
    return bool(words) and len(words & content_words(story)) * 2 >= len(words)


class ControlSource:
    """Draws controls and caches the extracted key points of control stories."""

    def __init__(self) -> None:
        self._extractions: dict[tuple[str, str], asyncio.Task[Extraction | None]] = {}

    async def draw(
        self,
        story: str,
        own: Sequence[KeyPointText],
        candidates: Sequence[ControlStory],
        count: int,
        rng: random.Random,
        extractor: str,
        extract: Callable[[str], Awaitable[Extraction]],
    ) -> list[ControlPoint]:
        """Up to `count` controls for the item whose story and own key points are given."""
        if count <= 0 or not candidates:
            return []
        order = rng.sample(list(candidates), len(candidates))[: count + SPARE_STORIES]
        extractions = await asyncio.gather(*(self._extraction(extractor, c, extract) for c in order))
        taken = {kp.text.lower() for kp in own}
        controls: list[ControlPoint] = []
        for candidate, extraction in zip(order, extractions, strict=True):
            if extraction is None:
                continue
            usable = [
                kp
                for kp in extraction.key_points
                if kp.text.lower() not in taken and not plausible_in(kp, story)
            ]
            if usable:
                controls.append(ControlPoint(rng.choice(usable), candidate.id))
                if len(controls) == count:
                    break
        return controls

    def _extraction(
        self, extractor: str, story: ControlStory, extract: Callable[[str], Awaitable[Extraction]]
    ) -> asyncio.Task[Extraction | None]:
        key = (extractor, hashlib.sha256(story.text.encode()).hexdigest())
        task = self._extractions.get(key)
        if task is None or (task.done() and (task.cancelled() or task.exception() is not None)):
            if len(self._extractions) >= MAX_CACHED:  # callers' own control stories must not pile up
                self._extractions.pop(next(iter(self._extractions)))

            async def run() -> Extraction | None:
                try:
                    return await extract(story.text)
                except ExtractionError:  # an unreadable control story only means fewer controls
                    return None

            task = self._extractions[key] = asyncio.ensure_future(run())
        return task
