"""A loss-curve picture as SVG text, without matplotlib: one polyline per series over epochs.

Used by the demo's report (``History.plot`` draws the same curves with matplotlib, an optional
extra). The y axis is logarithmic when every value is positive (losses fall by orders of
magnitude), linear otherwise.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

WIDTH, HEIGHT = 520, 260
LEFT, RIGHT, TOP, BOTTOM = 64, 110, 28, 36  # margins around the plot area, in pixels
COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728")


def loss_curve_svg(series: Mapping[str, Sequence[float]], title: str = "loss per epoch") -> str:
    """An SVG document drawing each ``{name: one value per epoch}`` series as a polyline with a
    dot per epoch (epoch 1 at the left), a legend of the names, and the y range and the epoch
    range as axis labels. Non-finite values are left out of the lines.

    Raises:
        ValueError: no series holds a finite value (nothing to draw).
    """
    finite = [v for values in series.values() for v in values if math.isfinite(v)]
    if not finite:
        raise ValueError("loss_curve_svg: no finite value to draw; pass at least one epoch's loss")
    log = min(finite) > 0
    scale = math.log10 if log else float
    low, high = scale(min(finite)), scale(max(finite))
    span = high - low or 1.0
    epochs = max(len(values) for values in series.values())
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(epoch: int) -> float:
        return LEFT + (plot_w * (epoch - 1) / (epochs - 1) if epochs > 1 else plot_w / 2)

    def y(value: float) -> float:
        return TOP + plot_h * (high - scale(value)) / span

    axis = " (log scale)" if log else ""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
        f'<text x="{LEFT}" y="18">{html.escape(title)}{axis}</text>',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" '
        'stroke="#999"/>',
        f'<text x="{LEFT - 6}" y="{TOP + 4}" text-anchor="end">{max(finite):.3g}</text>',
        f'<text x="{LEFT - 6}" y="{TOP + plot_h}" text-anchor="end">{min(finite):.3g}</text>',
        f'<text x="{LEFT}" y="{HEIGHT - 12}">epoch 1</text>',
        f'<text x="{LEFT + plot_w}" y="{HEIGHT - 12}" text-anchor="end">epoch {epochs}</text>',
    ]
    for index, (name, values) in enumerate(series.items()):
        colour = COLOURS[index % len(COLOURS)]
        points = [(x(e), y(v)) for e, v in enumerate(values, start=1) if math.isfinite(v)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [
            f'<circle cx="{px:.1f}" cy="{py:.1f}" r="2.5" fill="{colour}"/>' for px, py in points
        ]
        legend_y = TOP + 14 + 18 * index
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 10}" y1="{legend_y - 4}" x2="{WIDTH - RIGHT + 30}" '
            f'y2="{legend_y - 4}" stroke="{colour}" stroke-width="2"/>'
        )
        parts.append(f'<text x="{WIDTH - RIGHT + 36}" y="{legend_y}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
