"""Control key points: drawn per item from control stories, seeded by (seed, item id), extracted once."""

import random

from storytelling.evaluation.controls import ControlSource, ControlStory, plausible_in
from storytelling.evaluation.dimensions import Dimension
from storytelling.evaluation.keypoints import Attempt, Extraction, ExtractionError, KeyPointText

STORY = "A boy in a red cap falls off his bike in front of the bakery."
OWN = [KeyPointText(Dimension.EVENT, "A boy falls off a bike.")]
CANDIDATES = [ControlStory(f"sp-{i:03d}", f"Control story number {i}.") for i in range(10)]
POINTS = {
    f"Control story number {i}.": [
        KeyPointText(Dimension.EVENT, f"A goat number {i} chews an exercise book."),
        KeyPointText(Dimension.LOCATION, f"A lighthouse number {i} stands on a cliff."),
    ]
    for i in range(10)
}


class Extractor:
    """Key points of the control stories above, counting calls; story 3 cannot be read."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, text: str) -> Extraction:
        self.calls.append(text)
        if text == "Control story number 3.":
            raise ExtractionError([Attempt("not json", ["not valid JSON"])])
        return Extraction(POINTS[text], "raw")


async def draw(
    source: ControlSource, extractor: Extractor, item_id: str, count: int = 3, candidates=CANDIDATES
):
    return await source.draw(
        STORY, OWN, candidates, count, random.Random(f"7:{item_id}"), "recorded", extractor
    )


async def test_each_item_gets_its_own_seeded_controls_from_distinct_stories() -> None:
    extractor = Extractor()
    first = await draw(ControlSource(), extractor, "item-1")
    again = await draw(ControlSource(), Extractor(), "item-1")  # a fresh service: same draw
    other = await draw(ControlSource(), Extractor(), "item-2")
    assert first == again and first != other
    assert len(first) == 3 and len({c.source_story_id for c in first}) == 3
    assert all(c.source_story_id != "sp-003" for c in first)  # unreadable story: skipped
    for control in first:
        assert control.key_point in POINTS[f"Control story number {int(control.source_story_id[3:])}."]


async def test_control_stories_are_extracted_once_per_extractor() -> None:
    source, extractor = ControlSource(), Extractor()
    for item in range(6):
        await draw(source, extractor, f"item-{item}")
    assert len(extractor.calls) == len(set(extractor.calls))


async def test_controls_never_repeat_or_resemble_the_items_own_story() -> None:
    similar = [ControlStory("same", "Same."), ControlStory("near", "Near.")]
    POINTS["Same."] = [KeyPointText(Dimension.EVENT, "A boy falls off a bike.")]
    POINTS["Near."] = [KeyPointText(Dimension.LOCATION, "A boy in a red cap stands by the bakery.")]
    assert plausible_in(POINTS["Near."][0], STORY)
    assert await draw(ControlSource(), Extractor(), "item-1", candidates=similar) == []
    assert await draw(ControlSource(), Extractor(), "item-1", count=0) == []
