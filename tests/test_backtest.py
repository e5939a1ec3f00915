"""`verdict backtest`: point-in-time ratings, forward returns after the rating date, benchmark, outputs."""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from engine import benchmark as bm
from engine.backtesting import BacktestRun, backtest_universe
from engine.executors import WorkspaceSpec
from engine.pipeline import Workspace

ROOT = Path(__file__).resolve().parent.parent
CSI300 = ROOT / "facts" / "benchmarks" / "csi300.yaml"


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_single_symbol_writes_tables_and_charts(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = verdict("backtest", "600111", "--from", "2025-06-02", "--to", "2026-03-31", "--every", "10",
                  "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    for name in ("backtest_600111.png", "cumulative_excess.png", "ic.png"):
        png = tmp_path / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000, name
    table = json.loads((tmp_path / "backtest_600111.json").read_text())
    points = table["points"]
    assert points[0]["date"] >= "2025-06-02" and points[-1]["date"] <= "2026-03-31"
    report_day = next(p for p in points if p["date"] >= "2026-01-20")
    assert report_day["rating"] in ("Buy", "Hold")  # the report's facts are known from 2026-01-20
    assert points[0]["rating"] == "Neutral"  # before them only the prices speak
    assert table["benchmark"].startswith("CSI 300")
    doc = json.loads((tmp_path / "backtest.json").read_text())
    assert doc["benchmark"]["kind"] == "index" and doc["benchmark"]["source"]["commit"]
    counts = sum(r["count"] for r in doc["statistics"]["20"]["by_rating"])
    assert counts == sum(1 for p in points if p["excess"]["20"] is not None)
    assert "20-day forward excess return vs CSI 300" in out.stdout and "rank IC" in out.stdout
    assert "Survivorship" in out.stdout and "Newey-West" in out.stdout


def test_forward_return_starts_the_day_after_the_rating(ws: Workspace) -> None:
    """The 20-day return of a rating on D runs from the open of the next trading day to the open 20 trading days
    later, for the stock and the index alike; D's own bar is not part of it."""
    day = dt.date(2026, 1, 20)
    bench = bm.load(CSI300)
    r = backtest_universe(ws, WorkspaceSpec.of(ws.rules_dir, ws.facts_dir), ["600111.SH"], day, day, 1, [20],
                          bench, workers=1)
    bars = ws.facts.find("600111").series.bars
    cal = sorted({b.date for b in bars} | {d for d in bench.dates if d <= bars[-1].date})
    i = cal.index(day)
    entry, exit_ = cal[i + 1], cal[i + 21]
    by_day = {b.date: b for b in bars}
    want = (by_day[exit_].open / by_day[entry].open - 1) * 100
    assert entry > day and math.isclose(r.forward[20][0][0], want, rel_tol=1e-12)
    idx = dict(zip(bench.dates, bench.opens or [], strict=True))
    assert math.isclose(r.bench[20][0], (idx[exit_] / idx[entry] - 1) * 100, rel_tol=1e-12)
    assert r.ratings[0].rating[0] == ws.evaluate("600111", as_of=day).rating


def _shift_prices_after(facts: Path, code: str, day: dt.date, factor: float) -> None:
    """Scale every bar after `day` in the symbol's price files (a different future)."""
    for path in (facts / "prices").rglob(f"{code}.csv"):
        rows = path.read_text(encoding="utf-8").splitlines()
        head, body = rows[0], rows[1:]
        cols = head.split(",")
        out = [head]
        for line in body:
            cells = line.split(",")
            if dt.date.fromisoformat(cells[0]) > day:
                for c in ("open", "close", "high", "low"):
                    k = cols.index(c)
                    cells[k] = f"{float(cells[k]) * factor:.2f}"
            out.append(",".join(cells))
        path.write_text("\n".join(out) + "\n", encoding="utf-8")


def test_no_look_ahead_from_prices_or_facts(workdir: Path) -> None:
    """A rating on D is the same whatever happens after D (later prices, or a fact published later), while what
    followed D, the forward return, changes with the future; a fact is used from the day it became known."""
    days = [dt.date(2026, 1, 12), dt.date(2026, 1, 13)]

    def run(facts: Path) -> BacktestRun:
        ws = Workspace.open(workdir / "rules", facts)
        return backtest_universe(ws, WorkspaceSpec.of(workdir / "rules", facts), ["000831.SZ"], days[0], days[-1], 1,
                                 [20], bm.load(CSI300), workers=1, detail=True)

    base = run(workdir / "facts")
    future = workdir / "future"
    shutil.copytree(workdir / "facts", future)
    _shift_prices_after(future, "000831", dt.date(2026, 1, 20), 1.5)  # a different future after the entry
    moved = run(future)
    b, m = base.ratings[0], moved.ratings[0]
    assert (m.rating[0], m.score[0], m.entries[0]) == (b.rating[0], b.score[0], b.entries[0])  # type: ignore[index]
    assert base.forward[20][0][0] != moved.forward[20][0][0]

    late = workdir / "late"
    shutil.copytree(workdir / "facts", late)
    stock = late / "stocks" / "000831.yaml"
    doc = yaml.safe_load(stock.read_text(encoding="utf-8"))
    # a margin inflow about 2026-01-09 that became known on 2026-01-13 (the bundle's own is known on 01-20)
    doc["facts"]["margin_balance_change_pct"] = [
        doc["facts"]["margin_balance_change_pct"],
        {"value": 15.0, "as_of": dt.date(2026, 1, 9), "known_at": dt.date(2026, 1, 13), "source": "seed-report"}]
    stock.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    told = run(late).ratings[0]
    assert (told.rating[0], told.score[0]) == (b.rating[0], b.score[0])  # not known on the 12th: not used
    assert told.score[1] == b.score[1] + 1  # known on the 13th: the margin-inflow rule adds its +1


def test_equal_weight_benchmark_is_the_mean_of_the_priced_universe(ws: Workspace) -> None:
    start, end = dt.date(2025, 10, 9), dt.date(2025, 12, 31)
    symbols = [s for s in ws.symbols() if ws.facts.stocks[s].series]
    r = backtest_universe(ws, WorkspaceSpec.of(ws.rules_dir, ws.facts_dir), symbols, start, end, 10, [20], None,
                          workers=1)
    assert r.benchmark.kind == "equal-weight" and "equal-weight" in " ".join(r.honesty())
    for t in range(len(r.dates)):
        xs = [r.forward[20][s][t] for s in range(len(symbols)) if r.ratings[s].status[t] in ("", "short price history")
              and not math.isnan(r.forward[20][s][t])]
        assert xs and math.isclose(r.bench[20][t], sum(xs) / len(xs), rel_tol=1e-12)
    # the suspended 300127 (no rows 2025-09-15 .. 09-26) is valued at its last close, never dropped
    assert all(not math.isnan(r.forward[20][s][0]) for s in range(len(symbols)))


def test_outputs_say_which_benchmark(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = verdict("backtest", "--all", "--from", "2025-10-09", "--to", "2025-12-31", "--every", "10",
                  "--horizons", "20,60", "--benchmark", "equal-weight", "--no-charts", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    doc = json.loads((tmp_path / "backtest.json").read_text())
    assert doc["benchmark"]["kind"] == "equal-weight" and doc["universe"]["symbols"] == 5
    assert "equal-weight index of the universe" in out.stdout
    for name in ("by_rating.csv", "by_quantile.csv"):
        assert {row["benchmark"] for row in _rows(tmp_path / name)} == {"equal-weight index of the universe (5 stocks)"}
    ratings = _rows(tmp_path / "ratings.csv")
    assert {r["symbol"] for r in ratings} == {"600111.SH", "000831.SZ", "300224.SZ", "300127.SZ"} | (
        {"300748.SZ"} & {r["symbol"] for r in ratings})
    cov = _rows(tmp_path / "coverage.csv")
    assert len(cov) == doc["universe"]["rating_dates"]
    assert all(int(c["rated"]) + sum(int(c[k]) for k in ("not listed yet", "no recent price", "short price history",
                                                          "no price history", "evaluation failed")) == 5 for c in cov)


def test_bad_arguments_are_clear_errors(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    out = verdict("backtest", "600111", "--from", "2030-01-01", "--to", "2030-02-01")
    assert out.returncode == 2 and "no trading day between 2030-01-01 and 2030-02-01" in out.stderr
    listing = tmp_path / "symbols.txt"
    listing.write_text("600111\nFOO\n000831\nBAR\n", encoding="utf-8")
    out = verdict("backtest", "--universe", str(listing), "--out", str(tmp_path))
    assert out.returncode == 2 and "2 of the 4 symbols have no facts" in out.stderr and "FOO, BAR" in out.stderr
    out = verdict("backtest", "600111", "--executor", "spark")
    assert out.returncode == 2 and "unknown executor 'spark'" in out.stderr
    out = verdict("backtest", "600111", "--horizons", "20,x")
    assert out.returncode == 2 and "--horizons" in out.stderr
    bad = tmp_path / "idx.csv"
    bad.write_text("date,open,close\n2025-01-02,1,2\n2025-01-02,1,2\n2025-01-03,1,x\n", encoding="utf-8")
    out = verdict("backtest", "600111", "--benchmark", str(bad), "--out", str(tmp_path))
    assert out.returncode == 2 and "idx.csv:3:1" in out.stderr and "idx.csv:4:1" in out.stderr
    assert "Traceback" not in out.stderr


@pytest.mark.parametrize("opens", [True, False])
def test_benchmark_csv_with_or_without_opens(tmp_path: Path, opens: bool) -> None:
    path = tmp_path / "idx.csv"
    head = "trade_date,open,close" if opens else "trade_date,close"
    rows = ["20250102,10,11", "20250103,11,12", "20250106,12,13"] if opens else ["20250102,11", "20250103,12",
                                                                                 "20250106,13"]
    path.write_text("\n".join([head, *rows]) + "\n", encoding="utf-8")
    b = bm.read_levels(path, bm.BenchmarkColumns(date="trade_date"))
    assert b[0] == [dt.date(2025, 1, 2), dt.date(2025, 1, 3), dt.date(2025, 1, 6)] and b[2] == [11.0, 12.0, 13.0]
    assert (b[1] == [10.0, 11.0, 12.0]) if opens else b[1] is None


def test_backtest_ratings_are_those_of_full_evaluations(ws: Workspace) -> None:
    """The backtest resolves only the facts the rules read, from series computed once: every rating and score
    is still the one `verdict evaluate --as-of` gives on that date."""
    symbols = [s for s in ws.symbols() if ws.facts.stocks[s].series]
    r = backtest_universe(ws, WorkspaceSpec.of(ws.rules_dir, ws.facts_dir), symbols, dt.date(2025, 3, 3),
                          dt.date(2026, 4, 7), 15, [20], bm.load(CSI300), workers=1)
    checked = 0
    for s, symbol in enumerate(symbols):
        for t, day in enumerate(r.dates):
            if r.ratings[s].status[t] == "":
                ev = ws.evaluate(symbol, as_of=day)
                assert (r.ratings[s].rating[t], r.ratings[s].score[t]) == (ev.rating, ev.score), (symbol, day)
                checked += 1
    assert checked > 60
