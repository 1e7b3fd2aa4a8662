"""docs/configuration.md is generated from the settings classes and must match them."""

from __future__ import annotations

from scripts.config_reference import OUTPUT, render


def test_configuration_reference_is_up_to_date():
    assert OUTPUT.read_text() == render(), "docs/configuration.md is stale: run `make docs`"
