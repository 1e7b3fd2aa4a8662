"""Inline SVG bar chart of alignment per reasoning dimension (no scripts, no network)."""

from __future__ import annotations

from collections.abc import Iterable
from html import escape

from storytelling.api import vocabulary
from storytelling.v1 import common_pb2

_LABEL_W, _BAR_W, _ROW_H, _VALUE_W = 190, 260, 26, 110


def dimension_chart(scores: Iterable[common_pb2.DimensionScore], title: str) -> str:
    """One row per dimension in enum order; a dimension without key points says so instead of a bar."""
    by_dimension: dict[int, common_pb2.DimensionScore] = {s.dimension: s for s in scores}
    dimensions = [v.number for v in common_pb2.Dimension.DESCRIPTOR.values if v.number != 0]
    width, height = _LABEL_W + _BAR_W + _VALUE_W, _ROW_H * len(dimensions) + 8
    rows = []
    for row, dimension in enumerate(dimensions):
        y = 4 + row * _ROW_H
        label = vocabulary.label(vocabulary.Dimension, dimension).replace("_", " ")
        rows.append(f'<text x="0" y="{y + 16}">{escape(label)}</text>')
        rows.append(f'<rect class="track" x="{_LABEL_W}" y="{y + 4}" width="{_BAR_W}" height="16" rx="3"/>')
        score = by_dimension.get(dimension)
        if score is None or score.count == 0:
            rows.append(f'<text x="{_LABEL_W + _BAR_W + 8}" y="{y + 16}">no key points</text>')
            continue
        value = min(max(score.score, 0.0), 1.0)
        rows.append(
            f'<rect class="bar" data-dimension="{escape(label)}" x="{_LABEL_W}" y="{y + 4}" '
            f'width="{value * _BAR_W:.1f}" height="16" rx="3"/>'
        )
        rows.append(f'<text x="{_LABEL_W + _BAR_W + 8}" y="{y + 16}">{value:.2f} (n={score.count})</text>')
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
        + "".join(rows)
        + "</svg>"
    )
