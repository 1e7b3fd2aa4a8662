"""Strict parsing of model outputs that must be one JSON object."""

import json
import re
from enum import StrEnum
from typing import Any

_FENCE = re.compile(r"```(?:json)?[ \t]*\n?(.*?)\n?[ \t]*```", re.S)


class OutputMode(StrEnum):
    """How an evaluator asks for its JSON output."""

    PARSED = "parsed"  # free text, parsed and validated, with bounded repair: every engine
    JSON_SCHEMA = "json_schema"  # decoding constrained to the evaluator's schema, then validated the same way


class OutputError(ValueError):
    """A model output that does not have the required shape; the message says what is wrong."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


def parse_object(raw: str) -> dict[str, Any]:
    """The output must be exactly one JSON object, optionally inside one markdown code fence.

    Prose around the object is an error, not something to guess around: the caller repairs by asking
    again with the error.
    """
    text = raw.strip()
    fenced = _FENCE.fullmatch(text)
    if fenced:
        text = fenced.group(1).strip()
    if not text:
        raise OutputError(["the reply is empty"])
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError([f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]) from None
    if not isinstance(value, dict):
        raise OutputError([f"expected a JSON object, got {type(value).__name__}"])
    return value
