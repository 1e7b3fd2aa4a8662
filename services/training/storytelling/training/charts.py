"""Grouped bar charts as standalone SVG files: no plotting library, no scripts, readable on GitHub."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

# One colour per series (prompt mode), distinguishable in greyscale too.
COLOURS = ("#4e79a7", "#f28e2b", "#59a14f", "#b07aa1")
_LEFT, _BAR_H, _GAP, _WIDTH, _RIGHT = 150, 14, 10, 360, 60


def grouped_bars(
    title: str,
    groups: Sequence[str],
    series: Sequence[str],
    values: dict[tuple[str, str], float | None],
    *,
    maximum: float,
    fmt: str = "{:.2f}",
) -> str:
    """One block of bars per group, one bar per series; a missing value is drawn as "n/a"."""
    block = _BAR_H * len(series) + _GAP
    legend_h = 22
    height = 30 + legend_h + block * len(groups)
    width = _LEFT + _WIDTH + _RIGHT
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="11">',
        f"<title>{escape(title)}</title>",
        f'<text x="0" y="14" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, name in enumerate(series):
        x = _LEFT + i * 110
        parts.append(f'<rect x="{x}" y="22" width="10" height="10" fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{x + 14}" y="31">{escape(name)}</text>')
    for g, group in enumerate(groups):
        top = 30 + legend_h + g * block
        parts.append(f'<text x="0" y="{top + block / 2}">{escape(group)}</text>')
        for s, name in enumerate(series):
            y = top + s * _BAR_H
            value = values.get((group, name))
            if value is None:
                parts.append(f'<text x="{_LEFT + 4}" y="{y + 11}" fill="#777">n/a</text>')
                continue
            length = max(min(value / maximum, 1.0), 0.0) * _WIDTH if maximum else 0.0
            colour = COLOURS[s % len(COLOURS)]
            parts.append(
                f'<rect x="{_LEFT}" y="{y + 1}" width="{length:.1f}" height="{_BAR_H - 2}" fill="{colour}"/>'
            )
            parts.append(
                f'<text x="{_LEFT + length + 4:.1f}" y="{y + 11}">{escape(fmt.format(value))}</text>'
            )
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
