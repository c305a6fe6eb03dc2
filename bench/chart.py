"""A line chart of throughput against concurrency, as a small self-contained SVG (no plotting library)."""

from __future__ import annotations

from math import floor, log2, log10
from xml.sax.saxutils import escape

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e")
WIDTH, HEIGHT, LEFT, RIGHT, TOP, BOTTOM = 760, 400, 70, 320, 40, 50


def line_chart(title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]],
               dashed: frozenset[str] = frozenset()) -> str:
    """``series``: name -> (x, y) points; x on a log-2 scale (1, 16, 64 clients spread evenly enough); the
    series named in ``dashed`` are drawn dashed in the colour of the solid one before them."""
    points = [point for line in series.values() for point in line]
    xs = sorted({x for x, _ in points}) or [1.0]
    y_top = _nice(max((y for _, y in points), default=1.0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def px(x: float) -> float:
        low, high = log2(xs[0]), log2(xs[-1])
        return LEFT + (plot_w * (log2(x) - low) / (high - low) if high > low else plot_w / 2)

    def py(y: float) -> float:
        return TOP + plot_h * (1 - y / y_top)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
             f'font-family="sans-serif" font-size="12">',
             f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
             f'<text x="{WIDTH / 2}" y="22" text-anchor="middle" font-size="14">{escape(title)}</text>',
             f'<line x1="{LEFT}" y1="{TOP + plot_h}" x2="{LEFT + plot_w}" y2="{TOP + plot_h}" stroke="black"/>',
             f'<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{TOP + plot_h}" stroke="black"/>']
    for step in range(6):
        value = y_top * step / 5
        parts.append(f'<line x1="{LEFT}" y1="{py(value):.1f}" x2="{LEFT + plot_w}" y2="{py(value):.1f}" '
                     f'stroke="#ddd"/><text x="{LEFT - 6}" y="{py(value) + 4:.1f}" text-anchor="end">{value:g}</text>')
    for x in xs:
        parts.append(f'<text x="{px(x):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle">{x:g}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 10}" text-anchor="middle">{escape(x_label)}</text>')
    parts.append(f'<text transform="translate(16 {TOP + plot_h / 2}) rotate(-90)" text-anchor="middle">'
                 f'{escape(y_label)}</text>')
    solid = -1
    for index, (name, line) in enumerate(series.items()):
        solid += name not in dashed
        colour = COLOURS[solid % len(COLOURS)]
        dash = ' stroke-dasharray="6 4"' if name in dashed else ""
        coords = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in sorted(line))
        parts.append(f'<polyline points="{coords}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        parts.extend(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>' for x, y in line)
        legend_y = TOP + 10 + 18 * index
        parts.append(f'<line x1="{WIDTH - RIGHT + 12}" y1="{legend_y}" x2="{WIDTH - RIGHT + 32}" y2="{legend_y}" '
                     f'stroke="{colour}" stroke-width="2"{dash}/><text x="{WIDTH - RIGHT + 38}" y="{legend_y + 4}">'
                     f'{escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _nice(value: float) -> float:
    """The next round number above ``value`` for the top of the y axis."""
    if value <= 0:
        return 1.0
    magnitude = float(10 ** floor(log10(value)))
    return next(step * magnitude for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10) if step * magnitude >= value)
