"""Pure: samples of the last 24 hours -> inline SVG (no script, no external files).

The SVG scales to the phone's width (viewBox, width 100 %); colours come from presentation
attributes, so the page's Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

WIDTH: Final = 400
HEIGHT: Final = 150
PAD_LEFT: Final = 36
PAD_RIGHT: Final = 8
PAD_TOP: Final = 10
PAD_BOTTOM: Final = 24
MAX_POINTS: Final = 400  # one per unit of width is all a phone can show


@dataclass(frozen=True, slots=True)
class Chart:
    """One chart: its samples, the window, and words for its labels."""

    title: str
    unit: str
    start: dt.datetime
    end: dt.datetime
    points: Sequence[tuple[dt.datetime, float]]
    empty_text: str
    step: bool = True  # a queue depth holds until the next sample; latencies are single dots


def nice_ceiling(value: float) -> float:
    """The next 1, 2, 5 × 10ⁿ at or above `value` (at least 1): a readable top of the axis."""
    if value <= 1:
        return 1.0
    exp = math.floor(math.log10(value))
    for m in (1, 2, 5, 10):
        top = m * 10.0**exp
        if top >= value:
            return float(top)
    return 10.0 ** (exp + 1)


def scale(chart: Chart, top: float) -> list[tuple[float, float]]:
    """Samples inside the window as SVG coordinates, thinned to MAX_POINTS."""
    span = (chart.end - chart.start).total_seconds() or 1.0
    inner_w = WIDTH - PAD_LEFT - PAD_RIGHT
    inner_h = HEIGHT - PAD_TOP - PAD_BOTTOM
    inside = [(t, v) for t, v in chart.points if chart.start <= t <= chart.end]
    if len(inside) > MAX_POINTS:
        stride = math.ceil(len(inside) / MAX_POINTS)
        # Keep each stride's highest value: a thinned chart must not hide a spike.
        inside = [
            max(inside[i : i + stride], key=lambda p: p[1]) for i in range(0, len(inside), stride)
        ]
    out = []
    for t, v in inside:
        x = PAD_LEFT + inner_w * (t - chart.start).total_seconds() / span
        y = PAD_TOP + inner_h * (1 - min(max(v, 0.0), top) / top)
        out.append((round(x, 1), round(y, 1)))
    return out


def _fmt(value: float) -> str:
    return f"{value:g}"


def render_svg(chart: Chart) -> str:
    """The chart as an <svg> element (text escaped)."""
    values = [v for t, v in chart.points if chart.start <= t <= chart.end]
    top = nice_ceiling(max(values, default=0.0))
    coords = scale(chart, top)
    title = html.escape(chart.title)
    base_y = HEIGHT - PAD_BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'aria-label="{title}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{title}</title>",
        f'<line x1="{PAD_LEFT}" y1="{base_y}" x2="{WIDTH - PAD_RIGHT}" y2="{base_y}" '
        'stroke="#888" stroke-width="1"/>',
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{base_y}" '
        'stroke="#888" stroke-width="1"/>',
        f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 10}" text-anchor="end" font-size="13" '
        f'fill="#444">{_fmt(top)}</text>',
        f'<text x="{PAD_LEFT - 4}" y="{base_y}" text-anchor="end" font-size="13" fill="#444">0</text>',
        f'<text x="{PAD_LEFT}" y="{HEIGHT - 6}" font-size="13" fill="#444">'
        f"{html.escape(chart.start.strftime('%H:%M'))}</text>",
        f'<text x="{WIDTH - PAD_RIGHT}" y="{HEIGHT - 6}" text-anchor="end" font-size="13" '
        f'fill="#444">{html.escape(chart.end.strftime("%H:%M"))} ({html.escape(chart.unit)})</text>',
    ]
    if not coords:
        parts.append(
            f'<text x="{WIDTH / 2}" y="{HEIGHT / 2}" text-anchor="middle" font-size="13" '
            f'fill="#666">{html.escape(chart.empty_text)}</text>'
        )
    elif chart.step:
        path = [f"{coords[0][0]},{coords[0][1]}"]
        for (x, y), (_, prev_y) in zip(coords[1:], coords, strict=False):
            path.append(f"{x},{prev_y}")
            path.append(f"{x},{y}")
        parts.append(
            f'<polyline class="series" points="{" ".join(path)}" fill="none" '
            'stroke="#1f6feb" stroke-width="2"/>'
        )
    else:
        parts.extend(
            f'<circle class="series" cx="{x}" cy="{y}" r="2.5" fill="#8250df"/>' for x, y in coords
        )
    parts.append("</svg>")
    return "".join(parts)
