"""The report page's data: an evaluation, and what the workspace it was made on adds to it (the price
window and its indicators, where each fact's source can be read, the facts nearest to changing the
rating). The HTML itself is written by reporthtml.py, the charts by svgchart.py.

A page is a pure function of the recorded evaluation (its JSON) and the exact rule and fact files
(prices included): no clock, no machine path, no environment. So `verdict audit report RUN_ID`, on
the files restored from the audit log's snapshot, writes the same bytes as the page made at the time.
"""

from __future__ import annotations

import datetime as dt
import os
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from . import indicators as ind
from .errors import Location, LookupFailure, Problem
from .model import Evaluation, FactUse, Source
from .svgchart import Band, Candle, Indicators, Level

if TYPE_CHECKING:
    from .audit import AuditLog, Record
    from .pipeline import Workspace
    from .whatif import Sensitivity

DEFAULT_WINDOW = 120  # trading days on the chart: about six months, the rating's horizon
MAX_SENSITIVITY_ROWS = 12


@dataclass(frozen=True)
class Cited:
    """A source as the page shows it: its title and publisher, and its address when it has one."""

    id: str
    title: str
    publisher: str
    ref: str
    url: str | None
    date: dt.date | None = None


@dataclass
class FactSources:
    """Where one fact came from: the chosen statement's source (the price files' sources for a fact
    derived from prices) and the other statements it was chosen over."""

    cited: list[Cited] = field(default_factory=list)
    alternatives: list[tuple[str, str, dt.date]] = field(default_factory=list)  # value, source, as_of


@dataclass(frozen=True)
class Flip:
    path: str
    label: str
    value: float
    direction: str
    boundary: float
    rating: str
    change_pct: float | None
    rule: str
    inclusive: bool


@dataclass
class PageData:
    evaluation: Evaluation
    aliases: list[str]
    window: int
    candles: list[Candle]
    indicators: Indicators | None
    bands: list[Band]
    levels: list[Level]
    labels: dict[str, str]
    sources: dict[str, FactSources]
    flips: list[Flip]
    sensitivity_evaluations: int
    price_basis: str = ""

    @property
    def price(self) -> FactUse | None:
        return stated_price(self.evaluation)


def stated_price(ev: Evaluation) -> FactUse | None:
    """The price upside is measured from: the stated share price (the valuation's basis), else the last
    close of the history, as the evaluation read it."""
    facts = {f.path: f for f in ev.facts}
    for path in ("stock.price", "stock.close"):
        fu = facts.get(path)
        if fu is not None and isinstance(fu.value, (int, float)) and not isinstance(fu.value, bool):
            return fu
    return None


def _cited(sid: str, sources: dict[str, Source]) -> Cited:
    s = sources.get(sid)
    if s is None:
        return Cited(sid, sid, "", "", None)
    return Cited(sid, s.title, s.publisher, s.ref, s.url, s.date)


def page_data(ws: Workspace, ev: Evaluation, window: int = DEFAULT_WINDOW) -> PageData:
    """Everything the page shows for `ev`, taken from `ws`, the workspace it was evaluated on."""
    from .formulas import DERIVED_SOURCE

    stock = ws.facts.find(ev.symbol)
    sf = ws.symbol_facts(ev.symbol, ev.as_of)
    catalog, sources = ws.facts.catalog, ws.facts.sources
    series = stock.series.until(ev.as_of) if stock.series is not None and ev.as_of else stock.series
    facts: dict[str, FactSources] = {}
    for fu in ev.facts:
        chosen = sf.chosen.get(fu.path)
        fs = FactSources()
        if chosen is not None:
            sid = chosen.value.source
            if sid == DERIVED_SOURCE and series is not None:
                segments = dict.fromkeys(series.sources)
                fs.cited = [_cited(DERIVED_SOURCE, sources), *(_cited(s, sources) for s in segments)]
            else:
                fs.cited = [_cited(sid, sources)]
            fs.alternatives = [(a.describe(), _cite_text(_cited(a.source, sources)), a.as_of)
                               for a in chosen.alternatives]
        facts[fu.path] = fs
    labels = {p: spec.label for p in catalog.paths() if (spec := catalog.spec(p)) is not None}
    candles: list[Candle] = []
    indicators = None
    if series is not None and series.bars:
        bars = series.bars
        t = ws.book.policy.technicals
        close, high, low = [b.close for b in bars], [b.high for b in bars], [b.low for b in bars]
        dif, dea, bar = ind.macd(close, *t.macd)  # on the whole history, then sliced (EMA seeds)
        k, d, j = ind.kdj(high, low, close, *t.kdj)
        start = max(0, len(bars) - window)
        candles = [Candle(b.date, b.open, b.high, b.low, b.close, b.volume) for b in bars[start:]]
        f, s, g = t.macd
        kn, m1, m2 = t.kdj
        indicators = Indicators(
            dif[start:], dea[start:], bar[start:], k[start:], d[start:], j[start:],
            f"MACD({f},{s},{g})  DIF {dif[-1]:.3f}  DEA {dea[-1]:.3f}  bar {bar[-1]:.3f}",
            f"KDJ({kn},{m1},{m2})  K {k[-1]:.1f}  D {d[-1]:.1f}  J {j[-1]:.1f}")
    return PageData(ev, [a for a in stock.file.aliases if not a.isascii()], window, candles, indicators,
                    _bands(ev), _levels(ev), labels, facts, *_flips(ws, ev),
                    price_basis=series.basis if series is not None else "")


def _cite_text(c: Cited) -> str:
    return f"{c.publisher} {c.ref}".strip() or c.id


def _bands(ev: Evaluation) -> list[Band]:
    out = []
    if ev.target:
        t = ev.target
        out.append(Band("target", "target", t.low, t.high,
                        f"target {t.currency} {t.low:,.2f} - {t.high:,.2f} ({t.rule})"))
    for e in ev.entries:
        if e.low is not None and e.high is not None:
            out.append(Band("entry", e.horizon, e.low, e.high,
                            f"{e.horizon}-term entry: {e.advice} {e.low:,.2f} - {e.high:,.2f} ({e.rule})"))
    return out


LEVELS = (("stock.resistance", "resistance"), ("stock.support", "support"))


def _levels(ev: Evaluation) -> list[Level]:
    facts = {f.path: f for f in ev.facts}
    out = []
    for path, kind in LEVELS:
        fu = facts.get(path)
        if fu is not None and isinstance(fu.value, (int, float)) and not isinstance(fu.value, bool):
            out.append(Level(kind, float(fu.value), f"{kind} {float(fu.value):,.2f}"))
    return out


def _flips(ws: Workspace, ev: Evaluation) -> tuple[list[Flip], int]:
    """The facts nearest to changing the rating (engine/whatif.py), and the share price at which it changes."""
    from .whatif import price_sensitivity, sensitivity

    results: list[Sensitivity] = [sensitivity(ws, ev.symbol, ev.as_of)]
    with suppress(LookupFailure):  # no stated share price on this date
        results.append(price_sensitivity(ws, ev.symbol, ev.as_of))
    out: list[Flip] = []
    for res in results:
        for s in res.facts:
            for f in (s.down, s.up):
                if f is not None:
                    out.append(Flip(s.path, s.label, s.value, f.direction, f.boundary, f.rating, f.change_pct, f.rule,
                                    f.inclusive))
    return out, sum(r.evaluations for r in results)


# ------------------------------------------------------------------------------ pages and files


def stock_page(ws: Workspace, ev: Evaluation, window: int = DEFAULT_WINDOW) -> str:
    from .reporthtml import render_page

    return render_page(page_data(ws, ev, window))


def write_text(path: Path, text: str) -> Path:
    """Write atomically (a temporary file renamed over the target): a failure leaves the old file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # opened like any new file: the umask applies
    try:
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def page_name(ev: Evaluation) -> str:
    return f"{ev.symbol.partition('.')[0]}.html"


def write_reports(ws: Workspace, evs: list[Evaluation], out: Path, window: int = DEFAULT_WINDOW) -> list[Path]:
    """One page per evaluation in `out`, and index.html: a sortable table linking to each."""
    from .reporthtml import render_index

    if out.exists() and not out.is_dir():
        raise LookupFailure([Problem(Location(str(out)), "report-out", f"--out {out} is a file; the report of "
                                     "several symbols needs a directory.",
                                     "Give a directory (it is created if missing), e.g. --out report/.")])
    paths = [write_text(out / page_name(ev), stock_page(ws, ev, window)) for ev in evs]
    ranks = {name: i for i, name in enumerate(ws.book.policy.scale.names())}
    rows = sorted(evs, key=lambda ev: (ranks.get(ev.rating, len(ranks)), -ev.score, ev.symbol))  # as a screen sorts
    aliases = [[a for a in ws.facts.find(ev.symbol).file.aliases if not a.isascii()] for ev in rows]
    paths.append(write_text(out / "index.html", render_index(rows, [stated_price(ev) for ev in rows], aliases,
                                                             [page_name(ev) for ev in rows])))
    return paths


def recorded_page(log: AuditLog, rec: Record, window: int = DEFAULT_WINDOW) -> str:
    """The page of a recorded run: its evaluation as recorded, on its rules and facts as they were."""
    from .audit import recorded_evaluation, recorded_workspace

    ev = recorded_evaluation(rec)
    with recorded_workspace(log, rec) as ws:
        return stock_page(ws, ev, window)
