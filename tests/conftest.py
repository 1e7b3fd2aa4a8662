"""Shared pytest configuration. Engine fixtures live in tests/engines/ and are imported here."""
