"""Inline SVG charts for the evaluation report and the dashboard: no JavaScript, no CDN, no plotting library.

Every function returns a self-contained ``<svg>`` string sized by ``viewBox`` (it scales with
its container) with ``<title>`` tooltips on marks, so the numbers can be read on hover too.
"""

from __future__ import annotations

import math
from html import escape
from typing import Callable, Mapping, Sequence

__all__ = ["TIER_COLORS", "color_for", "grouped_bars", "stacked_bars", "hbars", "share_bar", "nice_max", "fmt_usd"]

TIER_COLORS = {"fast": "#2a9d8f", "balanced": "#3a6ea5", "deep": "#7b4bb7", "frontier": "#e07a3f"}
_PALETTE = ["#2a9d8f", "#3a6ea5", "#7b4bb7", "#e07a3f", "#c9a227", "#d1495b", "#5c946e", "#8d6a9f", "#00798c", "#6c757d"]
_FONT = "font-family='system-ui,-apple-system,Segoe UI,Roboto,sans-serif'"


def color_for(name: str, index: int = 0) -> str:
    return TIER_COLORS.get(name) or _PALETTE[index % len(_PALETTE)]


def fmt_usd(v: float) -> str:
    if v == 0:
        return "$0"
    a = abs(v)
    if a >= 100:
        return f"${v:,.0f}"
    if a >= 1:
        return f"${v:,.2f}"
    if a >= 0.01:
        return f"${v:.3f}"
    digits = min(12, 1 - math.floor(math.log10(a)))
    return f"${v:.{digits}f}"


def nice_max(v: float) -> float:
    if v <= 0 or not math.isfinite(v):
        return 1.0
    exp = 10 ** math.floor(math.log10(v))
    for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if m * exp >= v:
            return m * exp
    return 10 * exp


def _axis(y0: float, y1: float, left: float, right: float, vmax: float, fmt: Callable[[float], str], ticks: int = 4) -> str:
    out = []
    for i in range(ticks + 1):
        v = vmax * i / ticks
        y = y1 - (y1 - y0) * i / ticks
        out.append(f"<line x1='{left}' x2='{right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#e6e8eb' stroke-width='1'/>")
        out.append(f"<text x='{left - 6}' y='{y + 4:.1f}' text-anchor='end' font-size='11' fill='#6b7280'>{escape(fmt(v))}</text>")
    return "".join(out)


def _legend(names: Sequence[str], x: float, y: float, colors: Mapping[str, str]) -> str:
    out, cx = [], x
    for n in names:
        out.append(f"<rect x='{cx:.0f}' y='{y - 9}' width='10' height='10' rx='2' fill='{colors[n]}'/>"
                   f"<text x='{cx + 14:.0f}' y='{y}' font-size='12' fill='#374151'>{escape(n)}</text>")
        cx += 24 + 7.2 * len(n)
    return "".join(out)


def _svg(width: int, height: int, body: str, label: str) -> str:
    return (f"<svg viewBox='0 0 {width} {height}' role='img' aria-label='{escape(label)}' {_FONT} "
            f"xmlns='http://www.w3.org/2000/svg' style='width:100%;height:auto;max-width:{width}px'>{body}</svg>")


def grouped_bars(groups: Sequence[str], series: Sequence[str], values: Mapping[tuple[str, str], float | None], *,
                 fmt: Callable[[float], str] = lambda v: f"{v:.0f}", ci: Mapping[tuple[str, str], tuple[float, float]] | None = None,
                 threshold: float | None = None, threshold_label: str = "", label: str = "chart", width: int = 720,
                 height: int = 260, vmax: float | None = None, value_labels: bool = True) -> str:
    """Bars per group (x) and series (colour), optional CI whiskers and a dashed threshold line."""
    colors = {s: color_for(s, i) for i, s in enumerate(series)}
    left, right, top, bottom = 64, width - 12, 28, height - 42
    hi = max([v for v in values.values() if v is not None] + [c[1] for c in (ci or {}).values()] + [threshold or 0] + [0])
    vmax = vmax or nice_max(hi * 1.08)
    body = [_axis(top, bottom, left, right, vmax, fmt), _legend(series, left, 14, colors)]
    gw = (right - left) / max(1, len(groups))
    bw = min(34.0, gw * 0.8 / max(1, len(series)))
    for gi, g in enumerate(groups):
        gx = left + gi * gw + (gw - bw * len(series)) / 2
        for si, s in enumerate(series):
            v = values.get((g, s))
            x = gx + si * bw
            if v is None:
                body.append(f"<text x='{x + bw / 2:.1f}' y='{bottom - 4}' text-anchor='middle' font-size='10' fill='#9ca3af'>n/a</text>")
                continue
            h = (bottom - top) * min(v, vmax) / vmax
            tip = f"{g} / {s}: {fmt(v)}"
            if ci and (g, s) in ci:
                lo, up = ci[(g, s)]
                tip += f" (CI {fmt(lo)} to {fmt(up)})"
            body.append(f"<rect x='{x + 1:.1f}' y='{bottom - h:.1f}' width='{bw - 2:.1f}' height='{max(h, 0.5):.1f}' rx='2' "
                        f"fill='{colors[s]}'><title>{escape(tip)}</title></rect>")
            if ci and (g, s) in ci:
                lo, up = ci[(g, s)]
                ylo = bottom - (bottom - top) * min(lo, vmax) / vmax
                yhi = bottom - (bottom - top) * min(up, vmax) / vmax
                cx = x + bw / 2
                body.append(f"<path d='M{cx:.1f},{ylo:.1f}V{yhi:.1f}M{cx - 4:.1f},{ylo:.1f}h8M{cx - 4:.1f},{yhi:.1f}h8' "
                            f"stroke='#111827' stroke-width='1.2' opacity='0.75'/>")
            elif value_labels and len(series) * len(groups) <= 24:
                body.append(f"<text x='{x + bw / 2:.1f}' y='{bottom - h - 4:.1f}' text-anchor='middle' font-size='10' "
                            f"fill='#374151'>{escape(fmt(v))}</text>")
        body.append(f"<text x='{left + gi * gw + gw / 2:.1f}' y='{bottom + 16}' text-anchor='middle' font-size='11' "
                    f"fill='#374151'>{escape(g[:22])}</text>")
    if threshold is not None and threshold <= vmax:
        y = bottom - (bottom - top) * threshold / vmax
        body.append(f"<line x1='{left}' x2='{right}' y1='{y:.1f}' y2='{y:.1f}' stroke='#d1495b' stroke-width='1.5' "
                    f"stroke-dasharray='6 4'/><text x='{right}' y='{y - 4:.1f}' text-anchor='end' font-size='11' "
                    f"fill='#d1495b'>{escape(threshold_label)}</text>")
    return _svg(width, height, "".join(body), label)


def stacked_bars(xs: Sequence[str], series: Sequence[str], values: Mapping[tuple[str, str], float], *,
                 fmt: Callable[[float], str] = fmt_usd, label: str = "chart", width: int = 720, height: int = 260,
                 colors: Mapping[str, str] | None = None) -> str:
    """One stacked bar per x (e.g. a day), one segment per series (e.g. a tier)."""
    colors = dict(colors or {}) or {s: color_for(s, i) for i, s in enumerate(series)}
    for i, s in enumerate(series):
        colors.setdefault(s, color_for(s, i))
    left, right, top, bottom = 64, width - 12, 28, height - 42
    totals = {x: sum(values.get((x, s), 0.0) for s in series) for x in xs}
    vmax = nice_max(max(totals.values(), default=0) * 1.05)
    body = [_axis(top, bottom, left, right, vmax, fmt), _legend(series, left, 14, colors)]
    bw = (right - left) / max(1, len(xs))
    every = max(1, math.ceil(len(xs) / 10))
    for i, x in enumerate(xs):
        y = bottom
        for s in series:
            v = values.get((x, s), 0.0)
            if v <= 0:
                continue
            h = (bottom - top) * v / vmax
            y -= h
            body.append(f"<rect x='{left + i * bw + bw * 0.12:.1f}' y='{y:.1f}' width='{bw * 0.76:.1f}' height='{h:.1f}' "
                        f"fill='{colors[s]}'><title>{escape(f'{x} {s}: {fmt(v)}')}</title></rect>")
        if i % every == 0 or i == len(xs) - 1:
            body.append(f"<text x='{left + i * bw + bw / 2:.1f}' y='{bottom + 16}' text-anchor='middle' font-size='11' "
                        f"fill='#374151'>{escape(x[5:] if len(x) == 10 else x)}</text>")
    if not xs:
        body.append(f"<text x='{width / 2}' y='{height / 2}' text-anchor='middle' font-size='13' fill='#9ca3af'>no data yet</text>")
    return _svg(width, height, "".join(body), label)


def hbars(labels: Sequence[str], values: Sequence[float], *, fmt: Callable[[float], str] = fmt_usd,
          colors: Sequence[str] | None = None, label: str = "chart", width: int = 720, row: int = 26) -> str:
    """Horizontal bars with the value at the end: rankings (spend by task type...)."""
    height = 12 + row * max(1, len(labels))
    left, right = 170, width - 90
    vmax = nice_max(max(values, default=0))
    body = []
    for i, (lab, v) in enumerate(zip(labels, values)):
        y = 6 + i * row
        w = (right - left) * (v / vmax if vmax else 0)
        c = colors[i] if colors else _PALETTE[1]
        body.append(f"<text x='{left - 8}' y='{y + row * 0.62:.1f}' text-anchor='end' font-size='12' fill='#374151'>"
                    f"{escape(lab[:26])}</text><rect x='{left}' y='{y + 3}' width='{max(w, 1):.1f}' height='{row - 8}' rx='3' "
                    f"fill='{c}'><title>{escape(f'{lab}: {fmt(v)}')}</title></rect><text x='{left + w + 6:.1f}' "
                    f"y='{y + row * 0.62:.1f}' font-size='12' fill='#111827'>{escape(fmt(v))}</text>")
    if not labels:
        body.append(f"<text x='{width / 2}' y='24' text-anchor='middle' font-size='13' fill='#9ca3af'>no data yet</text>")
    return _svg(width, height, "".join(body), label)


def share_bar(parts: Sequence[tuple[str, float]], *, label: str = "share", width: int = 720, height: int = 56) -> str:
    """One 100% bar split by share (tier mix), labelled with percentages."""
    total = sum(v for _, v in parts) or 1.0
    left, right = 4, width - 4
    x = float(left)
    body = []
    for i, (name, v) in enumerate(parts):
        w = (right - left) * v / total
        if w <= 0:
            continue
        c = color_for(name, i)
        pct = 100 * v / total
        body.append(f"<rect x='{x:.1f}' y='4' width='{w:.1f}' height='28' fill='{c}'><title>{escape(f'{name}: {pct:.1f}%')}"
                    f"</title></rect>")
        if w > 70:
            body.append(f"<text x='{x + 8:.1f}' y='23' font-size='12' fill='#fff' font-weight='600'>{escape(name)} {pct:.0f}%</text>")
        x += w
    if not parts:
        body.append(f"<text x='{width / 2}' y='22' text-anchor='middle' font-size='13' fill='#9ca3af'>no data yet</text>")
    else:
        body.append(_legend([p[0] for p in parts], left, height - 6, {p[0]: color_for(p[0], i) for i, p in enumerate(parts)}))
    return _svg(width, height, "".join(body), label)
