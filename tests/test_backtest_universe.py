"""A backtest over a small slice of the real shared universe, imported with the real command.

The slice has what real downloads have: stocks with suspensions (002564, 000627), one that stops
trading before the end (000627, last bar 2025-08-13), large and small names. Checked by hand from the
CSV files: forward returns start at the open after the rating date, the suspended and the stopped stock
are valued at their last close (counted, never dropped), and the equal-weight benchmark is the mean of
what could be priced.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MARKET = ROOT.parent / "shared" / "data" / "market"
UNIVERSE = MARKET / "ashare_universe_2022_2025"
SLICE = ["000002", "000627", "002516", "002564", "300750", "600519", "601318", "000858", "600036", "000333",
         "300059", "601012"]


def _need_shared() -> None:
    if not UNIVERSE.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{UNIVERSE} is missing (shared test data)")
        pytest.skip(f"{UNIVERSE} not present (shared test data)")


@pytest.fixture(scope="module")
def sliced(tmp_path_factory: pytest.TempPathFactory, verdict) -> Path:  # type: ignore[no-untyped-def]
    _need_shared()
    root = tmp_path_factory.mktemp("slice")
    download = root / "download"
    download.mkdir()
    for code in SLICE:
        shutil.copy(UNIVERSE / f"{code}.csv", download / f"{code}.csv")
    shutil.copytree(ROOT / "facts", root / "facts")
    out = verdict("data", "import", str(download), "--facts", str(root / "facts"), "--names",
                  str(MARKET / "ashare_universe_2022_2025_stocklist.csv"))
    assert out.returncode in (0, 1), out.stderr
    return root


def _bars(code: str) -> dict[dt.date, tuple[float, float]]:
    with (UNIVERSE / f"{code}.csv").open(encoding="utf-8") as fh:
        return {dt.date.fromisoformat(r["date"]): (float(r["open"]), float(r["close"])) for r in csv.DictReader(fh)}


def test_backtest_on_a_slice_of_the_real_universe(sliced: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    listing = sliced / "slice.txt"
    listing.write_text("\n".join(SLICE) + "\n", encoding="utf-8")
    out_dir = sliced / "out"
    out = verdict("backtest", "--universe", str(listing), "--facts", str(sliced / "facts"), "--from", "2025-01-02",
                  "--to", "2025-08-29", "--every", "10", "--horizons", "10,20", "--benchmark", "equal-weight",
                  "--no-charts", "--out", str(out_dir))
    assert out.returncode == 0, out.stderr
    doc = json.loads((out_dir / "backtest.json").read_text())
    assert doc["universe"]["symbols"] == len(SLICE) and doc["benchmark"]["kind"] == "equal-weight"
    with (out_dir / "ratings.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    bars = {code: _bars(code) for code in SLICE}
    calendar = sorted({d for b in bars.values() for d in b})
    by = {(r["symbol"][:6], r["date"]): r for r in rows}

    def fwd(code: str, day: dt.date, h: int) -> float:
        """By hand: open after `day` to the open h trading days later; a day without a bar: the last close."""
        i = calendar.index(day)

        def price(t: dt.date) -> float:
            if t in bars[code]:
                return bars[code][t][0]
            return bars[code][max(d for d in bars[code] if d < t)][1]

        return (price(calendar[i + 1 + h]) / price(calendar[i + 1]) - 1) * 100

    day = dt.date.fromisoformat(sorted({r["date"] for r in rows})[4])  # a rating date in March 2025
    assert day.month == 3 and ("600519", day.isoformat()) in by
    for code in ("600519", "300750", "000002"):
        row = by[(code, day.isoformat())]
        assert row["status"] == "rated" and row["rating"]
        assert float(row["forward_10d_pct"]) == pytest.approx(fwd(code, day, 10), abs=1e-3)
        assert float(row["excess_10d_pct"]) == pytest.approx(fwd(code, day, 10) - float(row["benchmark_10d_pct"]),
                                                             abs=2e-3)
    # the equal-weight benchmark on that date: the mean of every stock that could be priced
    priced = [r for (c, d), r in by.items() if d == day.isoformat() and r["status"] in ("rated", "short price history")]
    assert float(priced[0]["benchmark_10d_pct"]) == pytest.approx(
        sum(fwd(r["symbol"][:6], day, 10) for r in priced) / len(priced), abs=1e-3)

    # 000627 stops trading after 2025-08-13: rated while its last bar is within the 7-day prices freshness,
    # then "no recent price"; windows after its last bar are valued at its last close: counted, not dropped
    stopped = sorted((d, r) for (c, d), r in by.items() if c == "000627")
    last_rated = max(d for d, r in stopped if r["status"] == "rated")
    assert "2025-08-13" <= last_rated <= "2025-08-20" and stopped[-1][1]["status"] == "no recent price"
    row = by[("000627", last_rated)]
    assert row["forward_10d_pct"] and float(row["forward_10d_pct"]) == pytest.approx(
        fwd("000627", dt.date.fromisoformat(last_rated), 10), abs=1e-3)
    # a suspended stock (002564 has no row on 2025-04-14): every window, across the suspension too, has the
    # return valued at its last close, as computed by hand, never left out
    rated = [(d, r) for (c, d), r in by.items() if c == "002564" and r["status"] == "rated" and r["forward_20d_pct"]]
    assert len(rated) >= 10
    for d, r in rated:
        assert float(r["forward_20d_pct"]) == pytest.approx(fwd("002564", dt.date.fromisoformat(d), 20), abs=1e-3)
    cov = list(csv.DictReader((out_dir / "coverage.csv").open(encoding="utf-8")))
    assert all(int(c["rated"]) + int(c["no recent price"]) + int(c["short price history"]) + int(c["not listed yet"])
               + int(c["evaluation failed"]) + int(c["no price history"]) == len(SLICE) for c in cov)
    assert "Survivorship" in out.stdout and "equal-weight index of the universe" in out.stdout
