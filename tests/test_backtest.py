"""`verdict backtest` on the bundled data: point-in-time ratings, forward returns, a chart and a table."""

from __future__ import annotations

import json
from pathlib import Path


def test_backtest_writes_table_and_chart(verdict, tmp_path: Path) -> None:
    out = verdict("backtest", "600111", "--from", "2025-06-02", "--to", "2026-03-31", "--every", "10",
                  "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    png = tmp_path / "backtest_600111.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    table = json.loads((tmp_path / "backtest_600111.json").read_text())
    points = table["points"]
    assert points[0]["date"] >= "2025-06-02" and points[-1]["date"] <= "2026-03-31"
    report_day = next(p for p in points if p["date"] >= "2026-01-16")
    assert report_day["rating"] in ("Buy", "Hold")  # the report's facts exist from mid-January 2026
    assert points[0]["rating"] == "Neutral"  # before them only the prices speak
    for p in points:
        if p["forward"]["20"] is not None:
            assert isinstance(p["forward"]["20"], float)
    counts = sum(s["count"] for s in table["by_rating"])
    assert counts == len(points)
    assert "fwd 20d %" in out.stdout and "buy-and-hold over the range" in out.stdout


def test_backtest_forward_returns_are_measured_from_prices(ws) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    from engine.backtest import backtest

    day = dt.date(2026, 1, 20)
    r = backtest(ws, "600111", day, day, 1)
    (p,) = r.points
    bars = ws.facts.find("600111").series.bars
    i = next(k for k, b in enumerate(bars) if b.date == day)
    assert p.close == 49.62 and p.forward[20] == round((bars[i + 20].close / 49.62 - 1) * 100, 3)
    assert p.forward[60] is None  # the history ends before 60 more bars
    assert p.rating == ws.evaluate("600111").rating == "Buy"


def test_backtest_outside_the_history_is_a_clear_error(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("backtest", "600111", "--from", "2030-01-01", "--to", "2030-02-01")
    assert out.returncode == 2 and "no trading day of 600111.SH between" in out.stderr
