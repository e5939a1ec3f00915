"""The screener on an imported slice of the real A-share universe: --where, --columns, --sort, --top in every
format.

Each screen is checked against the symbols' own full evaluations (`verdict evaluate SYMBOL --format json`),
so the filter, the columns and the order are what evaluating each symbol alone says they should be.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from conftest import FACTS, ROOT, need_shared

UNIVERSE = ROOT.parent / "shared" / "data" / "market" / "ashare_universe_2022_2025"
NAMES = ROOT.parent / "shared" / "data" / "market" / "ashare_universe_2022_2025_stocklist.csv"
# Shenzhen and Shanghai main-board stocks with every trading day of 2022-01-04 .. 2025-09-03
SLICE = ["000002", "000063", "000333", "600000", "600007", "600008", "600011", "600036", "600519"]
AS_OF = "2025-09-03"  # the slice's last day: its technical facts are fresh


@pytest.fixture(autouse=True, scope="module")
def _universe_present() -> None:
    need_shared(UNIVERSE)  # skipped on a machine without the shared data; failed in CI
    need_shared(NAMES)


@pytest.fixture(scope="module")
def universe(tmp_path_factory: pytest.TempPathFactory, verdict: Any) -> Path:  # type: ignore[misc]
    """The bundle plus a slice of the real universe, imported as a user imports it (`verdict data import`)."""
    need_shared(UNIVERSE)
    root = tmp_path_factory.mktemp("screen")
    shutil.copytree(FACTS, root / "facts")
    shutil.copytree(ROOT / "rules", root / "rules")
    download = root / "tushare_universe"
    download.mkdir()
    for code in SLICE:
        shutil.copy(UNIVERSE / f"{code}.csv", download / f"{code}.csv")
    out = verdict("data", "import", str(download), "--facts", "facts", "--names", str(NAMES), cwd=root)
    assert out.returncode == 0, out.stdout + out.stderr
    assert all((root / "facts" / "stocks" / f"{code}.yaml").is_file() for code in SLICE)
    return root


def _run(verdict: Any, universe: Path, *args: str) -> str:  # type: ignore[misc]
    out = verdict("evaluate", "--all", "--no-record", "--as-of", AS_OF, *args, cwd=universe)
    assert out.returncode == 0, out.stderr
    return str(out.stdout)


@pytest.fixture(scope="module")
def evaluations(universe: Path, verdict: Any) -> dict[str, dict[str, Any]]:  # type: ignore[misc]
    """Every symbol evaluated alone, in full: the oracle for the screens."""
    out = verdict("evaluate", "--all", "--no-record", "--as-of", AS_OF, "--format", "jsonl", cwd=universe)
    assert out.returncode == 0, out.stderr
    docs = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(docs) == len(SLICE) + 5
    return {d["symbol"]: d for d in docs}


WHERE = 'rating == "Neutral" and score <= 0 and stock.rsi_6 > 40 and stock.close < 60'
COLUMNS = "rating,score,close,rsi_6,stock.kdj_j,warning,medium_entry"


def _expected(evaluations: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """What the screen must give, from the full evaluations: filtered, sorted by rsi_6 descending."""
    rows = []
    for sym, d in evaluations.items():
        facts = {f["path"]: f["value"] for f in d["facts"]}
        rsi, close = facts.get("stock.rsi_6"), facts.get("stock.close")
        if d["rating"] != "Neutral" or d["score"] > 0 or rsi is None or close is None or not (rsi > 40 and close < 60):
            continue
        medium = next((e for e in d["entries"] if e["horizon"] == "medium"), None)
        rows.append({"symbol": sym, "rating": d["rating"], "score": d["score"], "close": close, "rsi_6": rsi,
                     "stock.kdj_j": facts.get("stock.kdj_j"),
                     "warning": d["warnings"][0]["message"] if d["warnings"] else None,
                     "medium_entry": None if medium is None else
                     f"{medium['advice']} {medium['low']:.2f}-{medium['high']:.2f}"})
    rows.sort(key=lambda r: (-r["rsi_6"], r["symbol"]))
    return rows[:4]


def test_the_oracle_is_not_trivial(evaluations: dict[str, dict[str, Any]]) -> None:
    expected = _expected(evaluations)
    assert len(expected) == 4 and len({r["score"] for r in evaluations.values()}) >= 2
    assert len([d for d in evaluations.values() if d["score"] <= 0]) > len(expected) + 1  # --where leaves some out


def test_screen_as_json_lines(universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:  # type: ignore[misc]
    text = _run(verdict, universe, "--where", WHERE, "--columns", COLUMNS, "--sort", "rsi_6", "--top", "4",
                "--format", "jsonl")
    rows = [json.loads(line) for line in text.splitlines()]
    expected = _expected(evaluations)
    assert [r["symbol"] for r in rows] == [r["symbol"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert list(got) == ["symbol", "rating", "score", "close", "rsi_6", "stock.kdj_j", "warning", "medium_entry"]
        assert got == pytest.approx(want)


def test_screen_as_json(universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:  # type: ignore[misc]
    rows = json.loads(_run(verdict, universe, "--where", WHERE, "--columns", COLUMNS, "--sort", "rsi_6", "--top", "4",
                           "--format", "json"))
    assert rows == [pytest.approx(r) for r in _expected(evaluations)]


def test_screen_as_csv(universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:  # type: ignore[misc]
    text = _run(verdict, universe, "--where", WHERE, "--columns", COLUMNS, "--sort", "rsi_6", "--top", "4",
                "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    expected = _expected(evaluations)
    assert [r["symbol"] for r in rows] == [r["symbol"] for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got["rating"] == want["rating"] and float(got["score"]) == want["score"]
        assert float(got["rsi_6"]) == pytest.approx(want["rsi_6"], abs=1e-6)
        assert got["warning"] == (want["warning"] or "") and got["medium_entry"] == (want["medium_entry"] or "")


def test_screen_as_markdown_is_one_table(universe: Path, verdict: Any,  # type: ignore[misc]
                                         evaluations: dict[str, dict[str, Any]]) -> None:
    text = _run(verdict, universe, "--where", WHERE, "--columns", COLUMNS, "--sort", "rsi_6", "--top", "4",
                "--format", "markdown")
    table = [line for line in text.splitlines() if line.startswith("|")]
    expected = _expected(evaluations)
    assert table[0] == "| symbol | rating | score | close | rsi_6 | stock.kdj_j | warning | medium_entry |"
    assert table[1] == "|---|---|---:|---:|---:|---:|---|---|"
    assert [line.split(" | ")[0].lstrip("| ") for line in table[2:]] == [r["symbol"] for r in expected]
    assert text.count("# ") == 0 and text.startswith(f"**verdict: {len(expected)} symbol(s) where {WHERE}")


def test_screen_as_a_table(universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:  # type: ignore[misc]
    text = _run(verdict, universe, "--where", WHERE, "--columns", COLUMNS, "--sort", "rsi_6", "--top", "4")
    lines = text.splitlines()
    expected = _expected(evaluations)
    assert lines[0].startswith(f"verdict: {len(expected)} symbol(s) where {WHERE} (")
    assert lines[1].split() == ["symbol", "rating", "score", "close", "rsi_6", "stock.kdj_j", "warning",
                                "medium_entry"]
    body = [line for line in lines[3:] if line[:3] in ("  0", "  3", "  6")]  # rows, not folded warnings
    assert [line.split()[0] for line in body] == [r["symbol"] for r in expected]


def test_sort_ascending_and_by_rating(universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:  # type: ignore[misc]
    rows = json.loads(_run(verdict, universe, "--columns", "close", "--sort", "close:asc", "--format", "json"))
    closes = [r["close"] for r in rows]
    assert closes == sorted(closes) and len(rows) == len(evaluations)
    by_rating = json.loads(_run(verdict, universe, "--columns", "rating,score", "--format", "json"))
    order = ["Buy", "Hold", "Neutral", "Sell"]
    keys = [(order.index(r["rating"]), -r["score"], r["symbol"]) for r in by_rating]
    assert keys == sorted(keys)


def test_where_reads_outcome_names_signals_and_missing_facts_leave_a_symbol_out(  # type: ignore[misc]
        universe: Path, verdict: Any, evaluations: dict[str, dict[str, Any]]) -> None:
    out = verdict("evaluate", "--all", "--no-record", "--where", "upside >= 20", "--columns", "upside,target",
                  "--format", "json", cwd=universe)  # on the bundle's date: the report's facts are known
    rows = json.loads(out.stdout)
    assert sorted(r["symbol"] for r in rows) == ["000831.SZ", "300224.SZ", "300748.SZ", "600111.SH"]  # the Buys
    nre = next(r for r in rows if r["symbol"] == "600111.SH")
    assert nre["target"] == 68.21 and nre["upside"] == pytest.approx((68.21 / 49.62 - 1) * 100, abs=0.01)
    overbought = json.loads(_run(verdict, universe, "--where", "signal.overbought", "--columns", "rating",
                                 "--format", "json"))
    want = sorted(s for s, d in evaluations.items() if any(g["name"] == "overbought" for g in d["signals"]))
    assert sorted(r["symbol"] for r in overbought) == want
    banks = json.loads(_run(verdict, universe, "--where", 'sector == "银行"', "--columns", "name,sector",
                            "--format", "json"))  # the industry the names list gives, as the import maps it
    assert sorted(r["symbol"] for r in banks) == sorted(s for s, d in evaluations.items() if d["sector"] == "银行")
    assert len(banks) >= 2 and all(r["name"].endswith("银行") for r in banks)
    dated = json.loads(_run(verdict, universe, "--where", f'as_of == date("{AS_OF}")', "--columns", "as_of",
                            "--format", "json"))
    assert len(dated) == len(evaluations) and {r["as_of"] for r in dated} == {AS_OF}
    none = _run(verdict, universe, "--where", "stock.pe_ttm > 0 and stock.pe_ttm < 1", "--format", "csv")
    assert none.splitlines() == [none.splitlines()[0]]  # a header and no row


@pytest.mark.parametrize(("where", "message"), [
    ('rating == "Buy" and stock.pe_tmm < 50', "--where:1:21: error unknown-fact: unknown fact path `stock.pe_tmm`. "
                                              "Did you mean 'stock.pe_ttm'?"),
    ("ratng == 'Buy'", "--where:1:1: error unknown-name: `ratng` is not a fact path. Did you mean 'rating'?"),
    ("pe_ttm < 50", "--where:1:1: error unknown-name: `pe_ttm` is not a fact path. "
                    "Write the fact's full path: stock.pe_ttm."),
    ("score > 2 and rating > 3", "--where:1:15: error type: `>` needs numbers on both sides, but `rating` is text."),
    ('rating == "Buy" and', "--where:1:20: error syntax: the expression ends after `and`"),
    ("score > 2 and signal.overbougt", "--where:1:15: error unknown-signal: unknown signal `overbougt`. "
                                       "Did you mean 'overbought'?"),
    ("stock.pe_ttm", "--where:1:1: error type: a condition must be true or false, but this is number."),
])
def test_where_errors_name_the_column(verdict: Any, where: str, message: str) -> None:  # type: ignore[misc]
    out = verdict("evaluate", "--all", "--no-record", "--where", where)
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    assert out.stderr.startswith(message), out.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--columns", "pe_tmm"], "--columns: error unknown-column: unknown column 'pe_tmm'. Did you mean 'pe_ttm'?"),
    (["--columns", "return_since_2025_pct"], "--columns: error ambiguous-column: "
                                             "'return_since_2025_pct' is a fact of several namespaces "
                                             "(stock.return_since_2025_pct, sector.return_since_2025_pct)"),
    (["--columns", "signal.uptrnd"], "--columns: error unknown-column: no rule emits a signal 'uptrnd'."),
    (["--sort", "pe_ttm:up"], "--sort: error bad-sort: 'pe_ttm:up': the direction must be asc or desc."),
    (["--top", "0"], "Usage:"),
])
def test_column_and_sort_errors(verdict: Any, args: list[str], message: str) -> None:  # type: ignore[misc]
    out = verdict("evaluate", "--all", "--no-record", *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr, out.stderr


def test_a_recorded_screen_records_the_rows_it_shows(verdict: Any, tmp_path: Path) -> None:  # type: ignore[misc]
    db = str(tmp_path / "audit.sqlite3")
    out = verdict("evaluate", "--all", "--where", 'rating == "Buy"', "--sort", "score", "--top", "2",
                  "--columns", "score,run_id", "--format", "json", "--audit-db", db)
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    listed = verdict("audit", "list", "--audit-db", db, "--format", "json")
    assert sorted(r["run_id"] for r in json.loads(listed.stdout)) == sorted(r["run_id"] for r in rows)
    assert len(rows) == 2
