"""The seven chains-of-reasoning dimensions, named as the lower-case suffixes of the proto enum."""

from enum import StrEnum


class Dimension(StrEnum):
    TIME = "time"
    LOCATION = "location"
    CHARACTER_ROLE = "character_role"
    CHARACTER_RELATIONSHIP = "character_relationship"
    EVENT = "event"
    EVENT_CAUSAL_RELATIONSHIP = "event_causal_relationship"
    MENTAL_STATE = "mental_state"


DIMENSIONS: tuple[Dimension, ...] = tuple(Dimension)
