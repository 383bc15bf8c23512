"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing to download.

Values are numbers on a ``0..max_value`` scale (rates: 0..1); a missing value (None or NaN) draws
no bar or point. Text is escaped here; the result is :class:`markupsafe.Markup` for templates.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

from markupsafe import Markup

Format = Callable[[float | None], str]
PALETTE = ("#2563eb", "#16a34a", "#ea580c", "#9333ea")
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def _known(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _scale(value: float, max_value: float) -> float:
    return max(0.0, min(1.0, value / max_value)) if max_value > 0 else 0.0


def bar_chart(items: Sequence[tuple[str, float | None]], *, title: str, value_text: Format,
              max_value: float = 1.0, threshold: float | None = None,
              label_width: int = 120, bar_width: int = 320) -> Markup:
    """Horizontal bars, one per ``(label, value)``; an optional dashed threshold line."""
    row, top = 22, 24
    width = label_width + bar_width + 70
    height = top + row * len(items) + 8
    parts = [f'<text x="0" y="14" font-weight="600">{escape(title)}</text>']
    for i, (name, value) in enumerate(items):
        y = top + i * row
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end">'
                     f"{escape(name)}</text>")
        if _known(value):
            length = bar_width * _scale(float(value), max_value)
            parts.append(f'<rect x="{label_width}" y="{y + 3}" width="{length:.1f}" height="16"'
                         f' fill="{PALETTE[0]}"><title>{escape(name)}: '
                         f"{escape(value_text(value))}</title></rect>")
        parts.append(f'<text x="{label_width + bar_width + 6}" y="{y + 15}">'
                     f"{escape(value_text(value))}</text>")
    if threshold is not None:
        x = label_width + bar_width * _scale(threshold, max_value)
        parts.append(f'<line x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{height - 4}" '
                     'stroke="#b91c1c" stroke-dasharray="4 3"/>')
    return _svg(width, height, title, parts)


def line_chart(labels: Sequence[str], series: Sequence[tuple[str, Sequence[float | None]]], *,
               title: str, value_text: Format, max_value: float = 1.0,
               width: int = 560, height: int = 240) -> Markup:
    """One line per ``(name, values)`` over ``labels`` (e.g. months); gaps where a value is
    missing; horizontal guides at every quarter of ``max_value``."""
    left, right, top, bottom = 56, 12, 40, 28
    plot_w, plot_h = width - left - right, height - top - bottom
    step = plot_w / max(1, len(labels) - 1)

    def xy(i: int, value: float) -> tuple[float, float]:
        x = left + (i * step if len(labels) > 1 else plot_w / 2)
        return x, top + plot_h * (1 - _scale(value, max_value))

    parts = [f'<text x="0" y="14" font-weight="600">{escape(title)}</text>']
    for quarter in range(5):
        value = max_value * quarter / 4
        _, y = xy(0, value)
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" '
                     'stroke="#e4e4e7"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#52525b">'
                     f"{escape(value_text(value))}</text>")
    for i, name in enumerate(labels):
        x, _ = xy(i, 0)
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" '
                     f'fill="#52525b">{escape(name)}</text>')
    for k, (name, values) in enumerate(series):
        colour = PALETTE[k % len(PALETTE)]
        parts.append(f'<rect x="{left + 150 * k}" y="22" width="10" height="10" '
                     f'fill="{colour}"/><text x="{left + 150 * k + 14}" y="31">'
                     f"{escape(name)}</text>")
        for segment in _segments(values):
            points = " ".join("{:.1f},{:.1f}".format(*xy(i, v)) for i, v in segment)
            parts.append(f'<polyline points="{points}" fill="none" stroke="{colour}" '
                         'stroke-width="2"/>')
        for i, value in enumerate(values):
            if _known(value):
                x, y = xy(i, float(value))
                parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                             f"<title>{escape(labels[i])} {escape(name)}: "
                             f"{escape(value_text(value))}</title></circle>")
    return _svg(width, height, title, parts)


def _segments(values: Sequence[float | None]) -> list[list[tuple[int, float]]]:
    """Runs of consecutive known values, as ``(index, value)`` lists."""
    runs: list[list[tuple[int, float]]] = [[]]
    for i, value in enumerate(values):
        if _known(value):
            runs[-1].append((i, float(value)))
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def _svg(width: int, height: int, title: str, parts: list[str]) -> Markup:
    return Markup(
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title)}" {FONT}>'
        + "".join(parts) + "</svg>")
