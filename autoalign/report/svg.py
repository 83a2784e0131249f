"""Inline SVG charts, written by hand so the report is one self-contained file with no plotting dependency and no
network: grouped bars with 95% CI error bars, and lines over rounds with a CI band. Every mark has a ``<title>``
so hovering shows the exact figure."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Sequence

PALETTE = ("#3b6ea8", "#e07b39", "#4f9d69", "#b5485d", "#7a5ea8", "#8c7a3c", "#3aa6b9", "#777777")


@dataclass(frozen=True)
class Bar:
    value: float
    lo: float
    hi: float
    label: str = ""  # tooltip text


def _fmt(v: float) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if abs(v) < 1000 else f"{v:.0f}"


def _wrap(label: str, width: int, max_lines: int = 3) -> list[str]:
    """Break a label into lines of at most ``width`` characters, at spaces, then underscores, then anywhere."""
    pieces: list[str] = []
    for word in label.split():
        while len(word) > width:
            cut = word.rfind("_", 0, width + 1)
            cut = cut + 1 if cut > 0 else width
            pieces.append(word[:cut])
            word = word[cut:]
        if word:
            pieces.append(word)
    lines, cur = [], ""
    for w in pieces:
        joined = f"{cur}{'' if cur.endswith('_') or not cur else ' '}{w}"
        if cur and len(joined) > width:
            lines.append(cur)
            cur = w
        else:
            cur = joined
    if cur:
        lines.append(cur)
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [lines[max_lines - 1][: width - 1] + "…"]
    return lines or [""]


def title_width(title: str, left: int) -> int:
    """The width a chart needs so that ``title``, drawn from ``x = left``, is not clipped."""
    return int(left + 16 + 7.5 * len(title))


def bar_chart(
    title: str,
    groups: Sequence[str],
    series: Sequence[str],
    bars: Sequence[Sequence[Bar | None]],
    y_range: tuple[float, float] = (0.0, 1.0),
    chart_id: str = "",
    width: int | None = None,
    height: int = 260,
) -> str:
    """Grouped bars: ``bars[g][s]`` is series ``s`` in group ``g`` (None = no figure). Error bars span [lo, hi]."""
    n_g, n_s = max(1, len(groups)), max(1, len(series))
    group_w = max(96, 22 * n_s + 24)
    left, right, top, bottom = 44, 12, 28, 58
    # a 12px semibold title is up to ~7.5px a character: the chart is wide enough that its title is never clipped
    width = width or max(left + right + group_w * n_g, title_width(title, left))
    plot_w, plot_h = width - left - right, height - top - bottom
    y0, y1 = y_range
    span = (y1 - y0) or 1.0

    def y(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, y0), y1) - y0) / span)

    out = [f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="16" class="chart-title">{escape(title)}</text>']
    for k in range(5):
        v = y0 + span * k / 4
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(v):.1f}" y2="{y(v):.1f}" class="grid"/>'
                   f'<text x="{left - 6}" y="{y(v) + 4:.1f}" class="tick" text-anchor="end">{_fmt(v)}</text>')
    if y0 < 0 < y1:
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{y(0):.1f}" y2="{y(0):.1f}" class="zero"/>')
    slot = plot_w / n_g
    bar_w = min(22.0, (slot - 16) / n_s)
    for g, name in enumerate(groups):
        x_start = left + g * slot + (slot - bar_w * n_s) / 2
        for s in range(len(series)):
            b = bars[g][s] if g < len(bars) and s < len(bars[g]) else None
            if b is None:
                continue
            x = x_start + s * bar_w
            baseline = 0.0 if y0 < 0.0 < y1 else y0
            top_y, base_y = min(y(b.value), y(baseline)), max(y(b.value), y(baseline))
            colour = PALETTE[s % len(PALETTE)]
            tip = escape(f"{series[s]} | {name}: {_fmt(b.value)} [{_fmt(b.lo)}, {_fmt(b.hi)}] {b.label}".strip())
            out.append(f'<g class="bar"><title>{tip}</title>'
                       f'<rect x="{x + 1:.1f}" y="{top_y:.1f}" width="{bar_w - 2:.1f}" '
                       f'height="{max(0.5, base_y - top_y):.1f}" fill="{colour}"/>'
                       f'<line class="err" x1="{x + bar_w / 2:.1f}" x2="{x + bar_w / 2:.1f}" y1="{y(b.lo):.1f}" '
                       f'y2="{y(b.hi):.1f}"/>'
                       f'<line class="err" x1="{x + bar_w / 2 - 4:.1f}" x2="{x + bar_w / 2 + 4:.1f}" '
                       f'y1="{y(b.lo):.1f}" y2="{y(b.lo):.1f}"/>'
                       f'<line class="err" x1="{x + bar_w / 2 - 4:.1f}" x2="{x + bar_w / 2 + 4:.1f}" '
                       f'y1="{y(b.hi):.1f}" y2="{y(b.hi):.1f}"/></g>')
        for i, line in enumerate(_wrap(name, max(8, int(slot / 6.2)))):
            out.append(f'<text x="{left + g * slot + slot / 2:.1f}" y="{top + plot_h + 16 + 12 * i}" '
                       f'class="label" text-anchor="middle">{escape(line)}</text>')
    out.append("</svg>")
    return "".join(out)


def line_chart(
    title: str,
    xs: Sequence[int],
    series: Sequence[str],
    points: Sequence[Sequence[Bar | None]],
    y_range: tuple[float, float] = (0.0, 1.0),
    chart_id: str = "",
    width: int = 300,
    height: int = 190,
    x_label: str = "round",
) -> str:
    """One line per series over ``xs`` (``points[s][i]``), with the CI as a shaded band and a dot per point."""
    left, right, top, bottom = 40, 12, 26, 34
    width = max(width, title_width(title, left))
    plot_w, plot_h = width - left - right, height - top - bottom
    y0, y1 = y_range
    span = (y1 - y0) or 1.0
    n = max(1, len(xs) - 1)

    def px(i: int) -> float:
        return left + plot_w * (i / n if len(xs) > 1 else 0.5)

    def py(v: float) -> float:
        return top + plot_h * (1 - (min(max(v, y0), y1) - y0) / span)

    out = [f'<svg class="chart" id="{escape(chart_id)}" xmlns="http://www.w3.org/2000/svg" width="{width}" '
           f'height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}">',
           f'<text x="{left}" y="15" class="chart-title">{escape(title)}</text>']
    for k in range(3):
        v = y0 + span * k / 2
        out.append(f'<line x1="{left}" x2="{width - right}" y1="{py(v):.1f}" y2="{py(v):.1f}" class="grid"/>'
                   f'<text x="{left - 5}" y="{py(v) + 4:.1f}" class="tick" text-anchor="end">{_fmt(v)}</text>')
    for i, x in enumerate(xs):
        out.append(f'<text x="{px(i):.1f}" y="{top + plot_h + 14}" class="tick" text-anchor="middle">{x}</text>')
    out.append(f'<text x="{left + plot_w / 2:.1f}" y="{height - 4}" class="label" text-anchor="middle">'
               f'{escape(x_label)}</text>')
    for s, name in enumerate(series):
        colour = PALETTE[s % len(PALETTE)]
        pts = [(i, p) for i, p in enumerate(points[s]) if p is not None]
        if not pts:
            continue
        band = [f"{px(i):.1f},{py(p.hi):.1f}" for i, p in pts] + [f"{px(i):.1f},{py(p.lo):.1f}" for i, p in pts[::-1]]
        out.append(f'<polygon class="band" points="{" ".join(band)}" fill="{colour}"/>')
        out.append(f'<polyline class="line" fill="none" stroke="{colour}" '
                   f'points="{" ".join(f"{px(i):.1f},{py(p.value):.1f}" for i, p in pts)}"/>')
        for i, p in pts:
            tip = escape(f"{name} {x_label} {xs[i]}: {_fmt(p.value)} [{_fmt(p.lo)}, {_fmt(p.hi)}] {p.label}".strip())
            out.append(f'<circle cx="{px(i):.1f}" cy="{py(p.value):.1f}" r="3.2" fill="{colour}">'
                       f'<title>{tip}</title></circle>')
    out.append("</svg>")
    return "".join(out)


def legend(series: Sequence[str]) -> str:
    items = "".join(
        f'<span class="key"><i style="background:{PALETTE[s % len(PALETTE)]}"></i>{escape(name)}</span>'
        for s, name in enumerate(series)
    )
    return f'<div class="legend">{items}</div>'
