"""The `storytelling` command line."""
