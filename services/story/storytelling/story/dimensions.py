"""The seven chains-of-reasoning dimensions, named as the lower-case suffixes of the proto enum."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DimensionGuide:
    name: str
    title: str
    meaning: str
    # Things a painter can draw that let a viewer infer this dimension.
    clues: str


DIMENSIONS: tuple[DimensionGuide, ...] = (
    DimensionGuide(
        "time", "Time", "a special moment, not just 'day'",
        "a decorated tree and wrapped gifts for Christmas morning; a wall clock at 3:00 and a dark window "
        "for the middle of the night; birthday candles; autumn leaves and school bags for the first day "
        "of school",
    ),
    DimensionGuide(
        "location", "Location", "a recognisable place",
        "a blackboard and rows of desks for a classroom; shelves, trolleys and a checkout for a grocery "
        "store; a 'School Zone' sign; a market stall with a striped awning",
    ),
    DimensionGuide(
        "character_role", "Character role", "what the people are",
        "a nurse's scrubs and a stethoscope; a referee's whistle and striped shirt; a chef's hat; a "
        "postman's bag",
    ),
    DimensionGuide(
        "character_relationship", "Character relationship", "how the people relate",
        "a mother holding a toddler's hand; matching school uniforms for siblings; an elderly couple "
        "sharing an umbrella; a teacher bending over a pupil's desk",
    ),
    DimensionGuide(
        "event", "Event", "what is happening, ideally something unexpected",
        "a glass of milk tipping off a table; a boy falling off a bike; a dog running off with a sausage; "
        "a kite stuck in a tree",
    ),
    DimensionGuide(
        "event_causal_relationship", "Event causal relationship", "why it happens, visible in the same frame",
        "crayon drawings on the wall beside a boy holding a crayon while his mother frowns; a broken vase "
        "next to a ball and a guilty-looking child; an overflowing sink beside a distracted cook",
    ),
    DimensionGuide(
        "mental_state", "Mental state", "how the people feel, shown on faces and bodies",
        "clenched fists and a red face for anger; wide eyes and an open mouth for surprise; a lowered "
        "head and hidden hands for guilt; a grin and raised arms for joy",
    ),
)  # fmt: skip

NAMES: tuple[str, ...] = tuple(d.name for d in DIMENSIONS)
