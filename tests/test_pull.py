"""`verdict data pull` on recorded frames of the shapes akshare 1.19.5 returns: no test reaches the network."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import FACTS, ROOT

from engine.load import load_facts
from engine.pipeline import Workspace

pd = pytest.importorskip("pandas")
MARKET = ROOT.parent / "shared" / "data" / "market"
pytestmark = pytest.mark.skipif(not MARKET.is_dir(), reason="shared market data not present")


class Recorded:
    """akshare's functions, answering with frames built as akshare builds them (columns, order, dtypes)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def stock_zh_a_hist(self, symbol: str, period: str, start_date: str, end_date: str, adjust: str) -> Any:
        self.calls.append(("hist", symbol))
        assert (period, adjust) == ("daily", "qfq")
        rows = [r.split(",") for r in (MARKET / "ashare_universe_2022_2025" / f"{symbol}.csv").read_text()
                .splitlines()[-30:]]  # the real bars of the last 30 days, in akshare's columns
        df = pd.DataFrame({
            "日期": [dt.date.fromisoformat(r[0]) for r in rows], "股票代码": symbol,
            "开盘": [float(r[1]) for r in rows], "收盘": [float(r[2]) for r in rows],
            "最高": [float(r[3]) for r in rows], "最低": [float(r[4]) for r in rows],
            "成交量": [int(float(r[5])) for r in rows], "成交额": [float(r[6] or 0) * 1000 for r in rows],
            "振幅": 1.0, "涨跌幅": 0.5, "涨跌额": 0.1, "换手率": [1.25] * len(rows)})
        df = df[df["日期"] >= dt.datetime.strptime(start_date, "%Y%m%d").date()]
        return df[["日期", "股票代码", "开盘", "收盘", "最高", "最低", "成交量", "成交额", "振幅", "涨跌幅", "涨跌额",
                   "换手率"]]

    def stock_value_em(self, symbol: str) -> Any:
        self.calls.append(("value", symbol))
        days = [dt.date(2025, 9, 1), dt.date(2025, 9, 2), dt.date(2025, 9, 3)]
        return pd.DataFrame({"数据日期": days, "当日收盘价": [6.81, 6.72, 6.58], "当日涨跌幅": [0.7, -1.3, -2.1],
                             "总市值": [8.125e10, 8.018e10, 7.851e10], "流通市值": [6.617e10, 6.53e10, 6.394e10],
                             "总股本": 1.193e10, "流通股本": 9.717e9, "PE(TTM)": [-1.9, -1.88, -1.84],
                             "PE(静)": [-1.6, -1.58, -1.55], "市净率": [0.47, 0.46, 0.455], "PEG值": float("nan"),
                             "市现率": 3.1, "市销率": [0.25, 0.246, 0.243]})

    def stock_info_a_code_name(self) -> Any:
        return pd.DataFrame({"code": ["000002", "600111"], "name": ["万科A", "北方稀土"]})

    def tool_trade_date_hist_sina(self) -> Any:
        return pd.DataFrame({"trade_date": [dt.date(2026, 12, 31), dt.date(2027, 1, 4)]})


def test_pull_imports_recorded_frames_into_the_facts_directory(tmp_path: Path) -> None:
    from engine.datapull import pull

    facts = tmp_path / "facts"
    shutil.copytree(FACTS, facts)
    rec = Recorded()
    s = pull(["000002.SZ"], None, facts, "2025-07-01", "2025-09-03", "qfq", "akshare-em", fetcher=rec)
    d = s.as_dict()
    assert d["imported"] == 1 and d["bad"] == 0 and rec.calls == [("hist", "000002"), ("value", "000002")]
    assert not list(facts.glob(".pull-*"))  # the staging folder is gone
    stock = (facts / "stocks" / "000002.yaml").read_text(encoding="utf-8")
    assert 'name: "万科A"' in stock and "indicators/akshare-em/000002.csv" in stock
    table = (facts / "indicators" / "akshare-em" / "000002.csv").read_text().splitlines()
    assert table[0] == "date,pe_ttm,pe,pb,ps_ttm,turnover_rate,total_mv,circ_mv"
    assert table[-1] == "2025-09-03,-1.84,-1.55,0.455,0.243,1.25,785.1,639.4"
    assert "2027-01-04" in (facts / "calendar.txt").read_text()
    base = load_facts(facts)
    assert base.stocks["000002.SZ"].series is not None and base.stocks["000002.SZ"].series.bars[-1].close == 6.58
    ws = Workspace.open(ROOT / "rules", facts)
    on = {f.path: f.value for f in ws.evaluate("000002", as_of=dt.date(2025, 9, 3)).facts}
    assert on["stock.pb"] == 0.455 and on["stock.total_mv"] == 785.1 and on["stock.turnover_rate"] == 1.25


def test_pull_without_akshare_is_a_clear_error(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import importlib.util

    if importlib.util.find_spec("akshare") is not None:
        pytest.skip("akshare is installed here")
    out = verdict("data", "pull", "600111", "--facts", str(tmp_path), cwd=tmp_path)
    assert out.returncode == 2 and "pip install 'verdict[akshare]'" in out.stderr and "Traceback" not in out.stderr
