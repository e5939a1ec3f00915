"""Bench: what a report page costs, and the chart renderer chosen for it.

    python bench/report_page.py                               # write time and size of 600111's page
    python bench/report_page.py --library lightweight-charts.standalone.production.js --browser

Measures, for the bundled 600111: the time to make its page from a loaded workspace (evaluation,
chart, sensitivity, HTML; median of --repeat), its size and its chart's size. With --library (the
standalone build of TradingView's lightweight-charts, e.g. from `npm pack lightweight-charts`), also
the same chart (candles, volume, target and entry price lines, MACD and KDJ panes, same days) drawn by
that library inlined into a page; with --browser, the time headless Chromium takes to show each
(navigation start to the chart painted), median of --repeat. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine.pipeline import Workspace  # noqa: E402
from engine.report import page_data, stock_page  # noqa: E402
from engine.svgchart import price_chart  # noqa: E402


def library_page(lib: str, data: object) -> str:
    from engine.report import PageData

    assert isinstance(data, PageData) and data.indicators is not None
    ind = data.indicators
    days = [c.date.isoformat() for c in data.candles]
    payload = {
        "candles": [{"time": t, "open": c.open, "high": c.high, "low": c.low, "close": c.close}
                    for t, c in zip(days, data.candles, strict=True)],
        "volume": [{"time": t, "value": c.volume, "color": "#d9363e" if c.close >= c.open else "#1f9d55"}
                   for t, c in zip(days, data.candles, strict=True)],
        "bar": [{"time": t, "value": v, "color": "#d9363e" if v >= 0 else "#1f9d55"}
                for t, v in zip(days, ind.bar, strict=True)],
        **{name: [{"time": t, "value": v} for t, v in zip(days, getattr(ind, name), strict=True)]
           for name in ("dif", "dea", "k", "d", "j")},
        "lines": [{"price": v, "title": b.key} for b in data.bands for v in (b.low, b.high)]
        + [{"price": lv.value, "title": lv.kind} for lv in data.levels],
    }
    script = """
const L = LightweightCharts, D = DATA;
const chart = L.createChart(document.getElementById('c'), {width: 960, height: 620});
const c = chart.addSeries(L.CandlestickSeries, {upColor: '#d9363e', downColor: '#1f9d55', borderVisible: false,
  wickUpColor: '#d9363e', wickDownColor: '#1f9d55'});
c.setData(D.candles);
D.lines.forEach(l => c.createPriceLine({price: l.price, title: l.title, lineStyle: 2}));
const v = chart.addSeries(L.HistogramSeries, {priceScaleId: 'vol', priceFormat: {type: 'volume'}});
v.priceScale().applyOptions({scaleMargins: {top: 0.8, bottom: 0}});
v.setData(D.volume);
chart.addSeries(L.HistogramSeries, {}, 1).setData(D.bar);
chart.addSeries(L.LineSeries, {color: '#343a40', lineWidth: 1}, 1).setData(D.dif);
chart.addSeries(L.LineSeries, {color: '#f08c00', lineWidth: 1}, 1).setData(D.dea);
['k', 'd', 'j'].forEach((n, i) => chart.addSeries(L.LineSeries, {color: ['#1971c2', '#f08c00', '#ae3ec9'][i],
  lineWidth: 1}, 2).setData(D[n]));
"""
    return ("<!DOCTYPE html><html><head><meta charset=\"utf-8\"></head><body><div id=\"c\"></div>"
            f"<script>{lib}</script><script>const DATA = {json.dumps(payload)};{script}</script></body></html>")


def svg_page(svg: str) -> str:
    from engine.reporthtml import _asset

    return (f"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style>{_asset('report.css')}</style></head>"
            f"<body><div style=\"width:960px\">{svg}</div></body></html>")


def browser_ms(html: str, repeat: int) -> float:
    from playwright.sync_api import sync_playwright

    exe = next(p for p in ("/usr/bin/chromium", "/usr/bin/chromium-browser") if os.path.exists(p))
    times = []
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        page_path = Path(tmp) / "page.html"
        page_path.write_text(html, encoding="utf-8")
        ctx = p.chromium.launch_persistent_context(str(Path(tmp) / "profile"), executable_path=exe, headless=True,
                                                   args=["--no-sandbox", "--disable-gpu"])
        page = ctx.new_page()
        for _ in range(repeat + 1):  # the first load warms the browser up and is not counted
            page.goto(page_path.as_uri(), wait_until="load")
            times.append(page.evaluate("""() => new Promise(done => requestAnimationFrame(() =>
                requestAnimationFrame(() => done(performance.now()))))"""))
        ctx.close()
    return statistics.median(times[1:])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbol", default="600111")
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--library", type=Path, help="lightweight-charts standalone production build, to compare")
    ap.add_argument("--browser", action="store_true", help="also time rendering in headless Chromium")
    args = ap.parse_args()
    ws = Workspace.open(ROOT / "rules", ROOT / "facts")
    writes, html = [], ""
    for _ in range(args.repeat):
        t = time.perf_counter()
        ev = ws.evaluate(args.symbol, run_id="bench")
        html = stock_page(ws, ev)
        writes.append(time.perf_counter() - t)
    data = page_data(ws, ev)
    assert data.indicators is not None
    svg_times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        svg = price_chart(data.candles, data.indicators, data.bands, data.levels, "bench")
        svg_times.append(time.perf_counter() - t)
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {len(data.candles)} trading days on the chart\n")
    print("| what | size (KB) | made in (ms, median) | shown in Chromium (ms, median) |")
    print("|---|---:|---:|---:|")
    svg_browser = f"{browser_ms(svg_page(svg), args.repeat):.0f}" if args.browser else ""
    print(f"| whole page of {args.symbol} (evaluation, sensitivity, chart, HTML) | {len(html.encode()) / 1024:.0f} | "
          f"{statistics.median(writes) * 1000:.0f} | |")
    print(f"| chart as SVG (ours) | {len(svg.encode()) / 1024:.0f} | {statistics.median(svg_times) * 1000:.1f} | "
          f"{svg_browser} |")
    if args.library:
        lib = args.library.read_text(encoding="utf-8")
        page = library_page(lib, data)
        lib_browser = f"{browser_ms(page, args.repeat):.0f}" if args.browser else ""
        print(f"| chart by {args.library.name} inlined (library {len(lib.encode()) / 1024:.0f} KB + data) | "
              f"{len(page.encode()) / 1024:.0f} | | {lib_browser} |")


if __name__ == "__main__":
    main()
