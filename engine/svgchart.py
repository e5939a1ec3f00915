"""SVG charts for the report page: price (candles, volume, bands, levels), MACD and KDJ panels, and a
tornado chart of the rating's sensitivity.

A small renderer of our own rather than a charting library inlined into the page: measured smaller
(the whole chart is ~40 KB against ~200 KB for the library alone) and drawn without any script, so
the page is the same bytes every time and renders with scripts off or when printed
(bench/report_chart.py, README). Pure functions of numbers; every text is escaped here.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

UP, DOWN = "up", "dn"  # A-share convention: red when the close is at or above the open, green below


@dataclass(frozen=True)
class Candle:
    date: dt.date
    open: float
    high: float
    low: float
    close: float
    volume: float


@dataclass(frozen=True)
class Band:
    """A price range drawn across the chart (the target) or in the zone ahead of the last bar (entries)."""

    kind: str  # "target" | "entry"
    key: str  # "target" or the horizon
    low: float
    high: float
    label: str


@dataclass(frozen=True)
class Level:
    kind: str  # "support" | "resistance" | ...
    value: float
    label: str


@dataclass(frozen=True)
class Indicators:
    """Indicator values on the candles' days (computed on the whole history before slicing)."""

    dif: Sequence[float]
    dea: Sequence[float]
    bar: Sequence[float]
    k: Sequence[float]
    d: Sequence[float]
    j: Sequence[float]
    macd_label: str
    kdj_label: str


def _n(x: float) -> str:
    """A coordinate: one decimal is finer than a screen pixel and keeps the file small."""
    text = f"{x:.1f}"
    return text[:-2] if text.endswith(".0") else text


def price(x: float) -> str:
    return f"{x:,.2f}"


class _Scale:
    def __init__(self, lo: float, hi: float, top: float, bottom: float) -> None:
        if hi <= lo:
            lo, hi = lo - 1, hi + 1
        self.lo, self.hi, self.top, self.bottom = lo, hi, top, bottom

    def __call__(self, v: float) -> float:
        return self.bottom - (v - self.lo) / (self.hi - self.lo) * (self.bottom - self.top)


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values covering [lo, hi] (1, 2, 2.5 or 5 times a power of ten apart)."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step) * step
    out, v = [], first
    while v <= hi + step * 1e-9:
        out.append(round(v, 10))
        v += step
    return out


def _tick_text(v: float, span: float) -> str:
    if span >= 50:
        return f"{v:,.0f}"
    if span >= 5:
        return f"{v:,.1f}"
    return f"{v:,.2f}"


def _polyline(xs: Sequence[float], ys: Sequence[float], cls: str) -> str:
    pts = " ".join(f"{_n(x)},{_n(y)}" for x, y in zip(xs, ys, strict=True))
    return f'<polyline class="{cls}" points="{pts}"/>'


WIDTH = 960
LEFT, AXIS, AHEAD = 8, 58, 120  # plot starts at LEFT; AHEAD px right of the last bar for entry ranges
PRICE_TOP, PRICE_H, VOL_H, PANEL_H, GAP = 22, 300, 56, 96, 26


def price_chart(candles: Sequence[Candle], ind: Indicators, bands: Sequence[Band], levels: Sequence[Level],
                title: str) -> str:
    """Candles and volume with the target band, entry ranges (ahead of the last bar), support and
    resistance; MACD and KDJ panels under them on the same days."""
    n = len(candles)
    x0, x_last = LEFT, WIDTH - AXIS - AHEAD
    step = (x_last - x0) / max(n, 1)
    body = max(1.0, step * 0.68)

    def cx(i: int) -> float:
        return x0 + step * (i + 0.5)

    lows = [c.low for c in candles] + [b.low for b in bands] + [lv.value for lv in levels]
    highs = [c.high for c in candles] + [b.high for b in bands] + [lv.value for lv in levels]
    lo, hi = min(lows), max(highs)
    pad = (hi - lo) * 0.04 or 1.0
    py = _Scale(lo - pad, hi + pad, PRICE_TOP, PRICE_TOP + PRICE_H)
    vol_top = PRICE_TOP + PRICE_H + 6
    vmax = max((c.volume for c in candles), default=1.0) or 1.0
    macd_top = vol_top + VOL_H + GAP
    kdj_top = macd_top + PANEL_H + GAP
    height = kdj_top + PANEL_H + 24
    right = WIDTH - AXIS
    out: list[str] = [
        f'<svg class="chart" id="price-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-size="11">',
        f"<title>{escape(title)}</title>",
    ]
    # grid, month ticks, axes
    out.append('<g class="grid">')
    months: list[tuple[int, str]] = []
    for i, c in enumerate(candles):
        if i == 0 or c.date.month != candles[i - 1].date.month:
            months.append((i, c.date.strftime("%Y-%m") if c.date.month == 1 or not months else c.date.strftime("%m")))
    for i, _ in months:
        out.append(f'<line x1="{_n(cx(i))}" x2="{_n(cx(i))}" y1="{PRICE_TOP}" y2="{kdj_top + PANEL_H}"/>')
    span = py.hi - py.lo
    for t in nice_ticks(py.lo, py.hi, 6):
        out.append(f'<line x1="{x0}" x2="{right}" y1="{_n(py(t))}" y2="{_n(py(t))}"/>')
    out.append("</g>")
    out.append('<g class="axis">')
    last_y = py(candles[-1].close) if candles else -100.0
    for t in nice_ticks(py.lo, py.hi, 6):
        if abs(py(t) - last_y) > 12:  # the last close's tag sits on the axis there
            out.append(f'<text x="{right + 4}" y="{_n(py(t) + 4)}">{_tick_text(t, span)}</text>')
    if len(months) > 1 and cx(months[1][0]) - cx(months[0][0]) < 44:
        # the chart starts a few bars before a month begins: label that month, with its year
        months = [(months[1][0], candles[months[1][0]].date.strftime("%Y-%m")), *months[2:]]
    for i, label in months:
        where = "start" if cx(i) - x0 < 24 else "middle"
        out.append(f'<text x="{_n(cx(i))}" y="{kdj_top + PANEL_H + 16}" text-anchor="{where}">{label}</text>')
    out.append(f'<line class="frame" x1="{_n(x_last)}" x2="{_n(x_last)}" y1="{PRICE_TOP}" '
               f'y2="{PRICE_TOP + PRICE_H}"/>')
    out.append(f'<text x="{_n(x_last + AHEAD / 2)}" y="{PRICE_TOP - 6}" text-anchor="middle">entry ranges</text>')
    out.append("</g>")
    # target band across the chart; entry ranges in the zone ahead of the last bar, one column a horizon
    horizons = ("short", "medium", "long")
    col = AHEAD / len(horizons)
    for b in bands:
        y1, y2 = py(b.high), py(b.low)
        if b.kind == "target":
            out.append(f'<g class="band target" data-band="target"><title>{escape(b.label)}</title>'
                       f'<rect x="{x0}" y="{_n(y1)}" width="{_n(right - x0)}" height="{_n(max(y2 - y1, 1))}"/>'
                       f'<text x="{x0 + 6}" y="{_n(y1 + 13)}">{escape(b.label)}</text></g>')
        else:
            k = horizons.index(b.key) if b.key in horizons else len(horizons) - 1
            bx = x_last + k * col + 3
            out.append(f'<g class="band entry {escape(b.key)}" data-entry="{escape(b.key)}">'
                       f"<title>{escape(b.label)}</title>"
                       f'<line x1="{x0}" x2="{_n(x_last)}" y1="{_n(y1)}" y2="{_n(y1)}"/>'
                       f'<line x1="{x0}" x2="{_n(x_last)}" y1="{_n(y2)}" y2="{_n(y2)}"/>'
                       f'<rect x="{_n(bx)}" y="{_n(y1)}" width="{_n(col - 6)}" height="{_n(max(y2 - y1, 1))}"/>'
                       f'<text x="{_n(bx + (col - 6) / 2)}" y="{_n(y2 + 12)}" text-anchor="middle">'
                       f"{escape(b.key)}</text></g>")
    for lv in levels:
        y = py(lv.value)
        out.append(f'<g class="level {escape(lv.kind)}" data-level="{escape(lv.kind)}"><title>{escape(lv.label)}'
                   f'</title><line x1="{x0}" x2="{_n(x_last)}" y1="{_n(y)}" y2="{_n(y)}"/>'
                   f'<text x="{x0 + 4}" y="{_n(y - 3)}">{escape(lv.label)}</text></g>')
    # candles: wicks and bodies as one path per colour; volume the same
    for side in (UP, DOWN):
        wick, bodies, vols = [], [], []
        for i, c in enumerate(candles):
            if (c.close >= c.open) != (side == UP):
                continue
            x = cx(i)
            wick.append(f"M{_n(x)} {_n(py(c.high))}V{_n(py(c.low))}")
            top, bottom = py(max(c.open, c.close)), py(min(c.open, c.close))
            bodies.append(f"M{_n(x - body / 2)} {_n(top)}h{_n(body)}v{_n(max(bottom - top, 0.8))}h-{_n(body)}z")
            vh = c.volume / vmax * VOL_H
            vols.append(f"M{_n(x - body / 2)} {_n(vol_top + VOL_H - vh)}h{_n(body)}v{_n(vh)}h-{_n(body)}z")
        if wick:
            out.append(f'<path class="wick {side}" d="{"".join(wick)}"/>')
            out.append(f'<path class="candle {side}" d="{"".join(bodies)}"/>')
            out.append(f'<path class="vol {side}" d="{"".join(vols)}"/>')
    if candles:
        last = candles[-1]
        y = py(last.close)
        out.append(f'<g class="last"><line x1="{x0}" x2="{right}" y1="{_n(y)}" y2="{_n(y)}"/>'
                   f'<rect x="{right}" y="{_n(y - 8)}" width="{AXIS}" height="16"/>'
                   f'<text x="{right + 4}" y="{_n(y + 4)}">{price(last.close)}</text></g>')
    out.append(f'<text class="panel-title" x="{x0}" y="{vol_top + 10}">volume</text>')
    # MACD
    out += _macd_panel(ind, cx, n, x0, x_last, macd_top, body)
    out += _kdj_panel(ind, cx, n, x0, x_last, kdj_top)
    # hover zones: one per day, with the day's numbers as a native tooltip (no script)
    out.append('<g class="hover">')
    for i, c in enumerate(candles):
        tip = (f"{c.date}  O {price(c.open)}  H {price(c.high)}  L {price(c.low)}  C {price(c.close)}  "
               f"V {c.volume:,.0f}  DIF {ind.dif[i]:.3f} DEA {ind.dea[i]:.3f}  K {ind.k[i]:.1f} D {ind.d[i]:.1f} "
               f"J {ind.j[i]:.1f}")
        out.append(f'<rect x="{_n(cx(i) - step / 2)}" y="{PRICE_TOP}" width="{_n(step)}" '
                   f'height="{kdj_top + PANEL_H - PRICE_TOP}"><title>{tip}</title></rect>')
    out.append("</g></svg>")
    return "\n".join(out)


def _panel_axis(lo: float, hi: float, scale: _Scale, x0: float, x_last: float, top: int, label: str
                ) -> list[str]:
    right = WIDTH - AXIS
    out = [f'<rect class="panel" x="{x0}" y="{top}" width="{_n(x_last - x0)}" height="{PANEL_H}"/>',
           f'<text class="panel-title" x="{x0}" y="{top - 6}">{escape(label)}</text>']
    for t in nice_ticks(lo, hi, 3):
        out.append(f'<text class="axis" x="{right + 4}" y="{_n(scale(t) + 4)}">{_tick_text(t, hi - lo)}</text>')
    return out


def _macd_panel(ind: Indicators, cx: object, n: int, x0: float, x_last: float, top: int, body: float
                ) -> list[str]:
    assert callable(cx)
    values = [*ind.dif, *ind.dea, *ind.bar, 0.0]
    lo, hi = min(values), max(values)
    pad = (hi - lo) * 0.06 or 0.1
    s = _Scale(lo - pad, hi + pad, top, top + PANEL_H)
    out = _panel_axis(s.lo, s.hi, s, x0, x_last, top, ind.macd_label)
    zero = s(0.0)
    out.append(f'<line class="zero" x1="{x0}" x2="{_n(x_last)}" y1="{_n(zero)}" y2="{_n(zero)}"/>')
    for side in (UP, DOWN):
        d = []
        for i, v in enumerate(ind.bar):
            if (v >= 0) != (side == UP):
                continue
            y = s(v)
            d.append(f"M{_n(cx(i))} {_n(zero)}V{_n(y)}")
        if d:
            out.append(f'<path class="macd-bar {side}" d="{"".join(d)}"/>')
    xs = [cx(i) for i in range(n)]
    out.append(_polyline(xs, [s(v) for v in ind.dif], "line dif"))
    out.append(_polyline(xs, [s(v) for v in ind.dea], "line dea"))
    return out


def _kdj_panel(ind: Indicators, cx: object, n: int, x0: float, x_last: float, top: int) -> list[str]:
    assert callable(cx)
    values = [*ind.k, *ind.d, *ind.j, 0.0, 100.0]
    s = _Scale(min(values) - 4, max(values) + 4, top, top + PANEL_H)
    out = _panel_axis(s.lo, s.hi, s, x0, x_last, top, ind.kdj_label)
    for ref in (20.0, 80.0):
        out.append(f'<line class="ref" x1="{x0}" x2="{_n(x_last)}" y1="{_n(s(ref))}" y2="{_n(s(ref))}"/>')
    xs = [cx(i) for i in range(n)]
    out.append(_polyline(xs, [s(v) for v in ind.k], "line k"))
    out.append(_polyline(xs, [s(v) for v in ind.d], "line d"))
    out.append(_polyline(xs, [s(v) for v in ind.j], "line j"))
    return out


# ------------------------------------------------------------------------------ sensitivity


@dataclass(frozen=True)
class TornadoRow:
    """One fact: how far it must move down and up (percent) for the rating to change, and to what."""

    label: str
    down_pct: float | None
    down_rating: str
    up_pct: float | None
    up_rating: str
    anchor: str


def tornado(rows: Sequence[TornadoRow], title: str, clip: float = 100.0) -> str:
    """Bars from 0 to the change (%) at which the rating changes, nearest fact on top; bars beyond
    +/-`clip` % are cut at the edge and marked with their value."""
    label_w, row_h, top = 300, 26, 26
    bar_w = WIDTH - label_w
    mid = label_w + bar_w / 2
    scale = (bar_w / 2 - 100) / clip
    height = top + row_h * max(len(rows), 1) + 30
    out = [f'<svg class="chart tornado" id="sensitivity-chart" viewBox="0 0 {WIDTH} {height}" role="img" '
           f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg" font-size="12">',
           f"<title>{escape(title)}</title>",
           f'<line class="zero" x1="{_n(mid)}" x2="{_n(mid)}" y1="{top - 6}" y2="{height - 24}"/>']
    for tick in (-clip, -clip / 2, clip / 2, clip):
        x = mid + tick * scale
        out.append(f'<line class="grid" x1="{_n(x)}" x2="{_n(x)}" y1="{top - 6}" y2="{height - 24}"/>'
                   f'<text class="axis" x="{_n(x)}" y="{height - 10}" text-anchor="middle">{tick:+.0f}%</text>')
    for i, r in enumerate(rows):
        y = top + i * row_h
        short = r.label if len(r.label) <= 44 else r.label[:42] + "..."
        out.append(f'<g class="row"><text x="{label_w - 8}" y="{y + 16}" text-anchor="end">'
                   f'<title>{escape(r.label)}</title><a href="#{escape(r.anchor)}">{escape(short)}</a></text>')
        for pct, rating, cls in ((r.down_pct, r.down_rating, "down"), (r.up_pct, r.up_rating, "up")):
            if pct is None:
                continue
            shown = max(-clip, min(clip, pct))
            x1, x2 = sorted((mid, mid + shown * scale))
            cut = abs(pct) > clip
            tip = f"{r.label}: the rating becomes {rating} at {pct:+.1f}%"
            out.append(f'<rect class="bar {cls}" x="{_n(x1)}" y="{y + 4}" width="{_n(max(x2 - x1, 1.5))}" '
                       f'height="{row_h - 8}"><title>{escape(tip)}</title></rect>')
            tx = x2 + 4 if cls == "up" else x1 - 4
            anchor = "start" if cls == "up" else "end"
            text = f"{'>' if cut and cls == 'up' else '<' if cut else ''}{pct:+.1f}% {rating}"
            out.append(f'<text x="{_n(tx)}" y="{y + 16}" text-anchor="{anchor}">{escape(text)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
