"""`verdict data import` on small slices of the real universe: formats, gaps, re-runs, bad files, a real kill."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FACTS, ROOT

from engine.dataimport import import_folder
from engine.errors import FactError
from engine.load import load_facts
from engine.pipeline import Workspace

MARKET = ROOT.parent / "shared" / "data" / "market"
UNIVERSE = MARKET / "ashare_universe_2022_2025"
NAMES = MARKET / "ashare_universe_2022_2025_stocklist.csv"
# 002564 has three gaps (suspensions), 301632 listed 2025-08-12, 601989 is not in the names list and ends
# early (suspended 2024-09-03 .. 09-18, delisted after its merger), 600111 is already in the bundle (same
# bars), 300748 is in the bundle on another qfq anchor.
SLICE = ["000002", "002564", "301632", "601989", "600111", "300748"]

pytestmark = pytest.mark.skipif(not UNIVERSE.is_dir(), reason="shared market data not present")


def _slice(tmp: Path, codes: list[str] = SLICE) -> Path:
    folder = tmp / "download"
    folder.mkdir()
    for c in codes:
        shutil.copy(UNIVERSE / f"{c}.csv", folder / f"{c}.csv")
    return folder


@pytest.fixture()
def facts(tmp_path: Path) -> Path:
    shutil.copytree(FACTS, tmp_path / "facts")
    return tmp_path / "facts"


def _tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_import_adds_stocks_that_load_and_evaluate(tmp_path: Path, facts: Path) -> None:
    s = import_folder(_slice(tmp_path), facts, NAMES)
    d = s.as_dict()
    assert (d["files"], d["imported"], d["bad"], d["new"], d["covered"]) == (6, 6, 0, 5, 1)
    assert d["files_with_gaps"] == 2 and d["gaps"] == 4 and d["start_late"] == 1 and d["end_early"] == 1
    assert d["unnamed"] == ["601989"]
    assert any("stocks/300748.yaml is yours" in m and "close ratio 1.004" in m for m in d["not_linked"])
    text = (facts / "stocks" / "002564.yaml").read_text(encoding="utf-8")
    assert text.startswith("# yaml-language-server: $schema=../../schema/stock.schema.json\n")
    assert "    - [2023-05-04, 2023-06-29]  # 39 trading days\n" in text
    vanke = (facts / "stocks" / "000002.yaml").read_text(encoding="utf-8")
    assert 'name: "万科A"' in vanke and 'sector: "全国地产"' in vanke
    assert (facts / "sectors" / "全国地产.yaml").is_file() and "全国地产" in (facts / "sector_map.yaml").read_text()
    assert (facts / "prices" / "download" / "000002.csv").stat().st_mode & 0o044 == 0o044  # readable as usual
    csv = (facts / "prices" / "download" / "000002.csv").read_text().splitlines()
    assert csv[0] == "date,open,high,low,close,volume,amount"
    assert csv[1].startswith("2022-01-04,17.46,18.49,17.34,18.35")
    base = load_facts(facts)
    assert {"000002.SZ", "002564.SZ", "301632.SZ", "601989.SH"} <= set(base.stocks)
    assert base.stocks["601989.SH"].file.sector == "unclassified" and base.stocks["301632.SZ"].file.board == "chinext"
    ws = Workspace.open(ROOT / "rules", facts)
    ev = ws.evaluate("000002", as_of=__import__("datetime").date(2025, 9, 3))
    assert ev.as_of.isoformat() == "2025-09-03" and {f.path: f.value for f in ev.facts}["stock.close"] == 6.58
    assert ws.evaluate("600111").rating == "Buy"  # the bundled stocks are as they were


def test_a_rerun_changes_nothing_and_a_newer_download_appends(tmp_path: Path, facts: Path) -> None:
    folder = _slice(tmp_path, ["000002", "002564"])
    full = (folder / "000002.csv").read_text()
    (folder / "000002.csv").write_text("".join(full.splitlines(keepends=True)[:-10]))
    import_folder(folder, facts, NAMES)
    before = _tree(facts)
    again = import_folder(folder, facts, NAMES).as_dict()
    assert _tree(facts) == before and again["unchanged"] == 2 and again["stock_files_written"] == 0
    (folder / "000002.csv").write_text(full)  # the next download: ten more days
    newer = import_folder(folder, facts, NAMES).as_dict()
    assert (newer["updated"], newer["unchanged"], newer["rows_added"]) == (1, 1, 10)
    assert (facts / "prices" / "download" / "000002.csv").read_text().splitlines()[-1].startswith("2025-09-03,")


def test_bad_files_are_named_with_their_line_and_the_others_imported(tmp_path: Path, facts: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    folder = _slice(tmp_path, ["000002", "002564", "000008", "000009", "000010"])

    def spoil(code: str, line: int, new: str) -> None:
        rows = (folder / f"{code}.csv").read_text().splitlines(keepends=True)
        rows[line - 1] = new + "\n"
        (folder / f"{code}.csv").write_text("".join(rows))

    spoil("000008", 5, "2022-01-10,2.5,2.6,2.7")  # a short row
    spoil("000009", 7, "2022-01-12,x,12.0,12.5,11.8,1000,")  # a price that is no number
    spoil("000010", 9, (folder / "000010.csv").read_text().splitlines()[7])  # line 8's date again
    spoil("002564", 4, "2022-01-07,5.0,5.1,5.2,4.9,-3,")  # negative volume
    out = verdict("data", "import", str(folder), "--facts", str(facts), "--names", str(NAMES), "--format", "json",
                  cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    d = json.loads(out.stdout)
    assert d["imported"] == 1 and d["bad"] == 4
    problems = "\n".join(d["problems"])
    for where in ("download/000008.csv:5:", "download/000009.csv:7:", "download/000010.csv:9:",
                  "download/002564.csv:4:"):
        assert where in problems
    assert "is not a number" in problems and "given twice (also on line 8)" in problems and "negative" in problems
    assert set(load_facts(facts).stocks) >= {"000002.SZ"} and not (facts / "stocks" / "000008.yaml").exists()
    text = verdict("data", "import", str(folder), "--facts", str(facts), cwd=tmp_path)
    assert "bad files     4 not imported (the others were):" in text.stdout


def test_tushare_and_akshare_exports_are_read(tmp_path: Path, facts: Path) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    rows = (UNIVERSE / "000002.csv").read_text().splitlines()[1:]
    lines = ["ts_code,trade_date,open,high,low,close,pre_close,change,pct_chg,vol,amount"]
    for r in reversed(rows):  # newest first, as Tushare returns them
        d, o, c, h, lo, v, _ = r.split(",")
        lines.append(f"000002.SZ,{d.replace('-', '')},{o},{h},{lo},{c},,,,{v},1234.5")
    (folder / "000002.SZ.csv").write_text("\n".join(lines) + "\n")
    shutil.copy(MARKET / "akshare_qfq_2021_2024" / "000831.csv", folder / "sz000831.csv")
    s = import_folder(folder, facts, NAMES, source="mixed").as_dict()
    assert s["bad"] == 0 and s["imported"] == 2
    mine = (facts / "prices" / "mixed" / "000002.csv").read_text().splitlines()
    assert mine[1] == "2022-01-04,17.46,18.49,17.34,18.35,1947202.02,1234.5" and mine[-1].startswith("2025-09-03,")
    # akshare's Eastmoney qfq differs from the bundle's Tushare qfq: imported, not joined to the user's file
    assert any("stocks/000831.yaml is yours" in m for m in s["not_linked"])
    ak = (facts / "prices" / "mixed" / "000831.csv").read_text().splitlines()
    assert ak[1] == "2021-01-04,13.45,14.05,13.33,13.94,498896,695171.104"  # 成交额 RMB -> RMB thousands
    turnover = (facts / "indicators" / "mixed" / "000831.csv").read_text().splitlines()
    assert turnover[0] == "date,turnover_rate" and turnover[1] == "2021-01-04,5.09"


def test_a_row_on_a_closed_day_is_left_out_and_said(tmp_path: Path, facts: Path) -> None:
    folder = _slice(tmp_path, ["000002"])
    rows = (folder / "000002.csv").read_text().splitlines(keepends=True)
    rows.insert(5, "2022-01-08,17.0,17.1,17.2,16.9,100,\n")  # a Saturday
    (folder / "000002.csv").write_text("".join(rows))
    d = import_folder(folder, facts, NAMES).as_dict()
    assert d["rows_left_out"] == 1 and "download/000002.csv:6: 2022-01-08 (Sat) is not a trading day" in d["notes"][0]
    assert "2022-01-08" not in (facts / "prices" / "download" / "000002.csv").read_text()


def test_the_loader_checks_gaps_against_the_exchange_calendar(facts: Path) -> None:
    csv = facts / "prices" / "gunark_tushare_qfq_2025H2_2026" / "300748.csv"
    lines = csv.read_text().splitlines(keepends=True)
    csv.write_text("".join(line for line in lines if not line.startswith("2026-01-14,")))
    with pytest.raises(FactError) as err:  # the only series: no other stock shows the day was a trading day
        load_facts(facts)
    assert any("300748.SZ: 1 trading day(s) missing: 2026-01-14" in p.message for p in err.value.problems)
    csv.write_text("".join([*lines[:40], "2025-08-24,33.0,33.1,33.2,32.9,100\n", *lines[40:]]))
    with pytest.raises(FactError) as err:
        load_facts(facts)
    assert any("1 row(s) on day(s) the exchange was closed: 2025-08-24" in p.message for p in err.value.problems)


def test_a_calendar_file_in_the_facts_directory_extends_the_bundled_one(tmp_path: Path) -> None:
    import datetime as dt

    from engine.calendar import exchange_calendar

    (tmp_path / "calendar.txt").write_text("# newer list\n2027-01-04\n2027-01-05\n")
    cal = exchange_calendar(tmp_path)
    assert cal.last == dt.date(2027, 1, 5) and cal.is_open(dt.date(2026, 1, 20))
    assert not cal.is_open(dt.date(2026, 1, 24)) and cal.count(dt.date(2026, 12, 31), dt.date(2027, 1, 5)) == 3


def test_a_killed_import_leaves_a_loadable_directory_and_a_rerun_completes_it(tmp_path: Path, facts: Path) -> None:
    codes = sorted(p.stem for p in UNIVERSE.glob("*.csv"))[:400]
    folder = _slice(tmp_path, codes)
    cmd = [sys.executable, "-c", "from engine.cli import main; main()", "data", "import", str(folder), "--facts",
           str(facts), "--names", str(NAMES), "--jobs", "2"]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    out_dir = facts / "prices" / "download"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        if out_dir.is_dir() and len(list(out_dir.glob("*.csv"))) >= 120:
            break
        time.sleep(0.01)
    os.killpg(proc.pid, signal.SIGKILL)  # the command and its workers, mid-import
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    written = list(out_dir.glob("*.csv"))
    assert 0 < len(written) < 400  # killed part-way
    for p in written:  # every prices file that exists is whole
        lines = p.read_text().splitlines()
        assert lines[0] == "date,open,high,low,close,volume,amount" and lines[-1].count(",") == 6
    load_facts(facts)  # no stock names a file, source or sector that is not there
    import_folder(folder, facts, NAMES)
    assert len(load_facts(facts).stocks) >= 400


DAILY_BASIC = Path(__file__).parent / "data" / "daily_basic"


def test_daily_indicator_tables_are_dated_sourced_facts(tmp_path: Path, facts: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    import datetime as dt

    import_folder(_slice(tmp_path, ["000002", "002564"]), facts, NAMES)
    out = verdict("data", "import", str(DAILY_BASIC), "--facts", str(facts), "--source", "tushare-daily-basic",
                  "--format", "json", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    d = json.loads(out.stdout)
    assert d["files"] == 3 and d["bad"] == 0 and d["stock_files_written"] == 2
    table = (facts / "indicators" / "tushare-daily-basic" / "000002.csv").read_text().splitlines()
    assert table[0] == "date,pb,ps_ttm,ps,turnover_rate,volume_ratio,total_mv,circ_mv"
    assert table[3] == "2025-09-03,0.4554,0.2432,0.2272,1.46,1.05,785.055135,639.354951"  # 万元 -> 亿元
    ws = Workspace.open(ROOT / "rules", facts)

    def facts_on(day: dt.date) -> dict[str, object]:
        return {f.path: f for f in ws.evaluate("000002", as_of=day).facts}

    on = facts_on(dt.date(2025, 9, 3))
    assert on["stock.pb"].value == 0.4554 and on["stock.total_mv"].unit == "RMB 100m"
    assert on["stock.pb"].source == "Tushare (daily_basic export)"
    assert on["stock.pb"].as_of == on["stock.pb"].known_at == dt.date(2025, 9, 3)
    assert facts_on(dt.date(2025, 9, 2))["stock.pb"].value == 0.4651  # the row of that day, not a later one
    assert "stock.pb" not in facts_on(dt.date(2025, 8, 29))  # before the first row nothing is known
    assert "stock.pe_ttm" not in on  # an empty cell (a loss) is no value
    again = verdict("data", "import", str(DAILY_BASIC), "--facts", str(facts), "--source", "tushare-daily-basic",
                    cwd=tmp_path)
    assert again.returncode == 0 and "0 written" in again.stdout


def test_a_bad_indicator_row_is_named_and_its_table_not_used(tmp_path: Path, facts: Path) -> None:
    from engine.dataimport import import_indicators

    import_folder(_slice(tmp_path, ["000002"]), facts, NAMES)
    folder = tmp_path / "basic"
    shutil.copytree(DAILY_BASIC, folder)
    (folder / "README.md").unlink()
    text = (folder / "20250902.csv").read_text().replace("000002.SZ,20250902,6.72,1.31", "000002.SZ,20250902,6.72,x")
    (folder / "20250902.csv").write_text(text)
    d = import_indicators(folder, facts).as_dict()
    assert d["bad"] == 1 and "basic/20250902.csv:2: unreadable row" in d["problems"][0]
    rows = (facts / "indicators" / "basic" / "000002.csv").read_text()
    assert "2025-09-02" not in rows and "2025-09-03" in rows


def test_a_screen_of_stale_stocks_reports_them_without_flooding(tmp_path: Path, facts: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    codes = sorted(p.stem for p in UNIVERSE.glob("*.csv"))[:25]
    import_folder(_slice(tmp_path, codes), facts, NAMES)
    out = verdict("evaluate", "--all", "--no-record", "--format", "csv", "--facts", str(facts), cwd=ROOT)
    assert out.returncode == 1
    assert len(out.stdout.splitlines()) == 1 + 5  # the bundle's five are rated as of 2026-01-20
    err = out.stderr.splitlines()
    assert len(err) == 12, err  # ten examples, one line for the rest, the count
    assert "is fresh on 2026-01-20: its last price bar is 2025-09-03 (139 days before)" in err[0]
    assert err[10].startswith("... and 15 more failed (25 of all 25 have no fresh data on the date)")
    fresh = verdict("evaluate", "--all", "--no-record", "--format", "csv", "--facts", str(facts), "--as-of",
                    "2025-09-03", cwd=ROOT)
    assert fresh.returncode == 0, fresh.stderr
    assert len(fresh.stdout.splitlines()) == 1 + 30
