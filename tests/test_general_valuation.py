"""The general valuation rules on stocks that have daily indicators: PE (TTM) against the stock's own three
years of daily PE (pe_hist_avg, from its indicator table) and against its sector's PEs on the date
(percentile), with the bundled rules, on four real banks of the shared universe imported as a user imports
them (prices, then a daily_basic table per stock). The PEs are written for the test: the shared universe
has bars only, so on it these rules have nothing to read.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import FACTS, ROOT, need_shared

MARKET = ROOT.parent / "shared" / "data" / "market"
UNIVERSE = MARKET / "ashare_universe_2022_2025"
NAMES = MARKET / "ashare_universe_2022_2025_stocklist.csv"
AS_OF = "2025-09-03"
RICH, FAIR, CHEAP, LOSS = "600000", "600015", "600016", "600036"  # four banks (银行) with every bar


def _dates(code: str) -> list[str]:
    with (UNIVERSE / f"{code}.csv").open(encoding="utf-8") as f:
        return [r["date"] for r in csv.DictReader(f)]


def _pe(code: str, i: int, n: int) -> float | None:
    """The PE (TTM) written for bar i of n: RICH re-rated from 6x to 10x over its last 20 sessions, FAIR at a
    steady 5x, CHEAP at 4x on its last 200 sessions only (too short a history), LOSS none (a loss)."""
    if code == RICH:
        return 10.0 if i >= n - 20 else 6.0 + (i % 7) / 10
    if code == FAIR:
        return 5.0
    if code == CHEAP:
        return 4.0 if i >= n - 200 else None
    return None


@pytest.fixture(scope="module")
def banks(tmp_path_factory: pytest.TempPathFactory, verdict: Any) -> Path:  # type: ignore[misc]
    need_shared(UNIVERSE)
    need_shared(NAMES)
    root = tmp_path_factory.mktemp("general-valuation")
    shutil.copytree(FACTS, root / "facts")
    shutil.copytree(ROOT / "rules", root / "rules")
    bars, basic = root / "bars", root / "basic"
    bars.mkdir()
    basic.mkdir()
    for code in (RICH, FAIR, CHEAP, LOSS):
        shutil.copy(UNIVERSE / f"{code}.csv", bars / f"{code}.csv")
        days = _dates(code)
        rows = ["ts_code,trade_date,close,pe_ttm,pb"]
        for i, day in enumerate(days):
            pe = _pe(code, i, len(days))
            rows.append(f"{code}.SH,{day.replace('-', '')},1,{'' if pe is None else pe},0.5")
        (basic / f"{code}.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    out = verdict("data", "import", str(bars), "--facts", "facts", "--names", str(NAMES), cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    out = verdict("data", "import", str(basic), "--facts", "facts", "--source", "test-daily-basic", cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    return root


def _evaluate(verdict: Any, root: Path, code: str) -> dict[str, Any]:  # type: ignore[misc]
    out = verdict("evaluate", code, "--as-of", AS_OF, "--format", "json", "--no-record", cwd=root)
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def _by_hand(code: str) -> tuple[float, int]:
    """The average of the positive PEs of the three years (1,095 days) up to 2025-09-03, and how many."""
    days = _dates(code)
    start = dt.date.fromisoformat(AS_OF) - dt.timedelta(days=1095)
    vals = [pe for i, d in enumerate(days) if dt.date.fromisoformat(d) > start
            and (pe := _pe(code, i, len(days))) is not None and pe > 0]
    return math.fsum(vals) / len(vals), len(vals)


def test_pe_against_its_own_history_from_the_daily_table(banks: Path, verdict: Any) -> None:  # type: ignore[misc]
    rich = _evaluate(verdict, banks, RICH)
    facts = {f["path"]: f for f in rich["facts"]}
    avg, n = _by_hand(RICH)
    assert n >= 700 and facts["stock.pe_hist_avg"]["value"] == pytest.approx(avg, abs=1e-4)
    assert facts["stock.pe_hist_avg"]["as_of"] == AS_OF and facts["stock.pe_ttm"]["value"] == 10.0
    assert facts["stock.pe_hist_avg"]["source"] == facts["stock.pe_ttm"]["source"] == "Tushare (daily_basic export)"
    fired = {f["rule"] for f in rich["fired"]}
    assert {"valuation.pe-stretched-vs-history", "valuation.history-premium"} <= fired
    assert any(s["name"] == "valuation_stretched" and s["score"] == -1 for s in rich["signals"])
    assert any(w["rule"] == "valuation.pe-stretched-vs-history" and
               f"is {10 / avg:.1f}x its historical average" in w["message"] for w in rich["warnings"])
    fair = _evaluate(verdict, banks, FAIR)
    assert {f["path"]: f["value"] for f in fair["facts"]}["stock.pe_hist_avg"] == 5.0
    assert "valuation.pe-stretched-vs-history" not in {f["rule"] for f in fair["fired"]}
    # 200 sessions of PE are no history to compare with; a loss has no PE at all
    for code in (CHEAP, LOSS):
        paths = {f["path"] for f in _evaluate(verdict, banks, code)["facts"]}
        assert "stock.pe_hist_avg" not in paths and ("stock.pe_ttm" in paths) == (code == CHEAP)


def test_pe_against_its_sector_on_the_date(banks: Path, verdict: Any) -> None:  # type: ignore[misc]
    evs = {c: _evaluate(verdict, banks, c) for c in (RICH, FAIR, CHEAP, LOSS)}
    pct = {c: {f["path"]: f["value"] for f in ev["facts"]}.get("stock.pe_ttm_pct_in_sector") for c, ev in evs.items()}
    # three banks state a PE on the date (10, 5, 4): 100, 50 and 0; the loss-maker has none
    assert pct == {RICH: 100.0, FAIR: 50.0, CHEAP: 0.0, LOSS: None}
    warned = {c for c, ev in evs.items() if any(w["rule"] == "relative_value.pe-top-of-sector" for w in ev["warnings"])}
    assert warned == {RICH}
    # valuation evidence without a target (no EPS, no DCF) makes no Buy: the policy says what is missing
    assert all(ev["rating"] != "Buy" and ev["target"] is None for ev in evs.values())
