"""Evaluation service: KNN diversity, story-image alignment, semantic complexity, text-side measures."""
