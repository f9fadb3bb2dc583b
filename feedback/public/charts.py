"""Server-rendered SVG charts: no script, no CDN, readable by screen readers.

Each chart is an ``<svg role="img">`` with a <title> and <desc>; the page puts a table
with the same numbers beside it. Only presentation attributes are used (no ``style``),
so the Content-Security-Policy (style-src 'self') holds.
"""
from __future__ import annotations

from markupsafe import Markup, escape

INK = "#111111"
GRID = "#767676"
PRIMARY = "#0b4f9c"
BAR_COLOURS = {5: "#146c2e", 4: "#3d8b4f", 3: "#8a5a00", 2: "#c2410c", 1: "#a4161a"}


def _text(x: float, y: float, content: str, *, anchor: str = "middle", size: int = 13, weight: str = "normal") -> str:
    return (f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" font-size="{size}" font-weight="{weight}" '
            f'fill="{INK}">{escape(content)}</text>')


def line_chart(chart_id: str, title: str, desc: str, points: list[tuple[str, float | None]], *,
               width: int = 480, height: int = 260, y_max: float = 1.0, percent: bool = True) -> Markup:
    """A line chart of one series over labelled points (None = no data: the line breaks)."""
    left, right, top, bottom = 52, 36, 16, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    n = max(len(points), 1)
    step = plot_w / max(n - 1, 1)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>']
    for i in range(5):
        value = y_max * i / 4
        y = top + plot_h - plot_h * i / 4
        parts.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="{GRID}" '
                     f'stroke-width="1" stroke-dasharray="{"" if i == 0 else "4 4"}"/>')
        label = f"{value * 100:.0f}%" if percent else f"{value:g}"
        parts.append(_text(left - 8, y + 5, label, anchor="end", size=14))
    segments: list[list[tuple[float, float]]] = [[]]
    for i, (label, value) in enumerate(points):
        x = left + step * i if n > 1 else left + plot_w / 2
        if (n - 1 - i) % 2 == 0:  # every other month, ending with the last
            parts.append(_text(x, height - bottom + 22, label, size=14))
        if value is None:
            segments.append([])
            continue
        y = top + plot_h - plot_h * min(value / y_max, 1.0) if y_max else top + plot_h
        segments[-1].append((x, y))
        shown = f"{value * 100:.1f}%" if percent else f"{value:.2f}"
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="5" fill="{PRIMARY}" class="point">'
                     f'<title>{escape(label)}：{escape(shown)}</title></circle>')
    for seg in segments:
        if len(seg) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y in seg)
            parts.insert(3, f'<polyline points="{path}" fill="none" stroke="{PRIMARY}" stroke-width="3"/>')
    parts.append("</svg>")
    return Markup("".join(parts))


def bar_chart(chart_id: str, title: str, desc: str, bars: list[dict], *, width: int = 480,
              height: int = 260) -> Markup:
    """Vertical bars; each bar is a dict with label, value and optional level (for its colour)."""
    left, right, top, bottom = 8, 8, 28, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    top_value = max([b["value"] for b in bars] + [1])
    n = max(len(bars), 1)
    slot = plot_w / n
    bar_w = slot * 0.6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{escape(chart_id)}" role="img" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="{escape(chart_id)}-t {escape(chart_id)}-d">',
             f'<title id="{escape(chart_id)}-t">{escape(title)}</title>',
             f'<desc id="{escape(chart_id)}-d">{escape(desc)}</desc>',
             f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="{GRID}" '
             f'stroke-width="1"/>']
    for i, bar in enumerate(bars):
        h = plot_h * bar["value"] / top_value
        x = left + slot * i + (slot - bar_w) / 2
        y = top + plot_h - h
        colour = BAR_COLOURS.get(bar.get("level"), PRIMARY)
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{bar_w:.1f}" height="{h:.1f}" '
                     f'fill="{colour}"><title>{escape(bar["label"])}：{bar["value"]}</title></rect>')
        parts.append(_text(x + bar_w / 2, y - 6, str(bar["value"]), size=16, weight="bold"))
        parts.append(_text(x + bar_w / 2, height - bottom + 22, bar["label"], size=15))
    parts.append("</svg>")
    return Markup("".join(parts))
