"""Writes deploy/profiles/profile.schema.json from the profile schema (part of `make docs`).

Editors validate profile files against it (the `yaml-language-server` line at the top of each), and the
Helm chart can check values against it without Python. A test fails when it is stale.
"""

from __future__ import annotations

import json

from storytelling.stack.profiles import SCHEMA_FILE, json_schema


def render() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


def main() -> None:
    SCHEMA_FILE.write_text(render())
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
