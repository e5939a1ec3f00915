"""what-if like a spreadsheet's data table: named scenarios side by side, and one- or two-way grids.

Each scenario's and each cell's outcome is checked against an evaluation of the same overrides made
through the library, so the side-by-side table and the grid say what evaluating each case alone says.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

from engine.derive import given_value, with_overrides
from engine.whatif import price_overrides

EXAMPLE = ROOT / "scenarios" / "600111-bear-base-bull.yaml"


def _evaluate(ws: Any, values: dict[str, Any], price: float | None = None) -> Any:  # type: ignore[misc]
    sf = ws.symbol_facts("600111")
    overrides = dict(price_overrides(ws, sf, price)) if price is not None else {}
    overrides.update({p: given_value(v, sf.as_of, "test") for p, v in values.items()})
    return ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, overrides))


def test_named_scenarios_side_by_side_match_their_own_evaluations(ws: Any, verdict: Any) -> None:  # type: ignore[misc]
    import yaml

    spec = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))["scenarios"]
    out = verdict("what-if", "600111", "--scenarios", str(EXAMPLE), "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert [s["name"] for s in d["scenarios"]] == list(spec) == ["bear", "base", "bull"]
    base = ws.evaluate("600111")
    assert (d["baseline"]["rating"], d["baseline"]["score"]) == (base.rating, base.score)
    for s in d["scenarios"]:
        want = _evaluate(ws, spec[s["name"]].get("set", {}), spec[s["name"]].get("price"))
        assert (s["rating"], s["score"]) == (want.rating, want.score), s["name"]
        assert s["entries"] == [e.model_dump() for e in want.entries]
        assert [w["message"] for w in s["warnings"]] == [w.message for w in want.warnings]
    bear = d["scenarios"][0]
    assert bear["rating"] != base.rating and "rating Buy -> Neutral" in bear["changes"]
    assert any(c.startswith("medium entry accumulate") and c.endswith("-> none") for c in bear["changes"])
    # the cut DCF case moves the target (38.85-42.70): 4.9% upside at 40 is short of Hold's 5%
    assert "target 63.54-72.87 -> 38.85-42.70" in bear["changes"]
    assert any(c.startswith("new warning from policy.evidence: \"Rating moved: upside 4.9%") for c in bear["changes"])
    assert bear["moved"]["stock.pe_ttm"]["to"] == pytest.approx(86.26 * 40 / 51.07)
    assert d["scenarios"][1]["changes"] == []  # base: the facts as stated


def test_the_table_names_what_each_scenario_set(verdict: Any) -> None:  # type: ignore[misc]
    out = verdict("what-if", "600111", "--scenarios", str(EXAMPLE))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["baseline", "bear", "base", "bull"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if line.strip() and not line.startswith(" " * 4)}
    assert rows["stock.price"] == ["51.07", "40", "61.3"]  # base leaves it (blank)
    assert rows["stock.earnings_growth_low_pct"] == ["116.67", "30", "116.67", "134.6"]
    assert rows["stock.pe_ttm"][1] == "67.5622" and rows["stock.pe_ttm"][2] == "(price)"  # moved with the price
    assert rows["rating"] == ["(score)", "Buy", "(9)", "Neutral", "(2)", "Buy", "(9)", "Buy", "(9)"]
    assert "Changes from the baseline" in out.stdout and "  base (the facts as stated" in out.stdout
    single = verdict("what-if", "600111", "--set", "stock.pe_ttm=30", "--set", "stock.kdj_j=>85")
    assert single.returncode == 0, single.stderr
    header = single.stdout.splitlines()[1].split(None, 1)
    assert header == ["baseline", "stock.pe_ttm=30, stock.kdj_j=>85"]
    assert "new warning from technical.kdj-overbought" in single.stdout
    md = verdict("what-if", "600111", "--scenarios", str(EXAMPLE), "--format", "markdown")
    assert "|  | baseline | bear | base | bull |" in md.stdout
    assert "| rating (score) | Buy (9) | Neutral (2) | Buy (9) | Buy (9) |" in md.stdout


def test_set_applies_to_every_scenario_and_may_not_clash(ws: Any, verdict: Any) -> None:  # type: ignore[misc]
    out = verdict("what-if", "600111", "--scenarios", str(EXAMPLE), "--set", "stock.pe_ttm=35", "--format", "json")
    assert out.returncode == 0, out.stderr
    base = json.loads(out.stdout)["scenarios"][1]
    want = _evaluate(ws, {"stock.earnings_growth_low_pct": 116.67, "stock.pe_ttm": 35})
    assert (base["rating"], base["score"]) == (want.rating, want.score) and base["set"]["stock.pe_ttm"] == 35
    clash = verdict("what-if", "600111", "--scenarios", str(EXAMPLE), "--set", "stock.earnings_growth_low_pct=50")
    assert clash.returncode == 2 and "stock.earnings_growth_low_pct is set both by --set and by scenario 'bear'" \
        in clash.stderr


def test_a_bad_scenarios_file_is_reported_at_each_mistake(tmp_path: Path, verdict: Any) -> None:  # type: ignore[misc]
    bad = tmp_path / "bad.yaml"
    bad.write_text("scenarios:\n"
                   "  bear:\n"
                   "    price: 40\n"
                   "    set:\n"
                   "      stock.pe_tmm: 30\n"
                   "      stock.price: 30\n"
                   "  bull:\n"
                   "    sett: {stock.pe_ttm: 20}\n"
                   "  baseline:\n"
                   "    set: {stock.kdj_j_max_recent: {gt: 80}, stock.name: 3}\n", encoding="utf-8")
    out = verdict("what-if", "600111", "--scenarios", str(bad))
    assert out.returncode == 2 and out.stdout == "" and "Traceback" not in out.stderr
    lines = out.stderr.splitlines()
    where = str(bad)
    assert lines[0] == f"{where}:3:5: error price-twice: " \
                       "the scenario sets stock.price and `price`. Give the price once: " \
                       "`price:` also moves the facts linked to it, `set: {stock.price: ...}` moves nothing else."
    assert lines[1].startswith(f"{where}:5:7: error bad-set: "
                               "unknown fact path 'stock.pe_tmm'. Did you mean 'stock.pe_ttm'")
    assert lines[2] == f"{where}:8:5: error unknown-key: unknown key 'sett'. Did you mean 'set'?"
    assert lines[3].startswith(f"{where}:9:3: error reserved-name: 'baseline' names the facts as they are")
    assert lines[4].startswith(f"{where}:10:11: error bad-set: 'stock.kdj_j_max_recent' cannot be given as a bound")
    assert lines[5].startswith(f"{where}:10:45: error bad-set: 'stock.name' must be text, not 3.")
    assert lines[6] == "6 problems; nothing was evaluated."
    broken = tmp_path / "broken.yaml"
    broken.write_text("scenarios:\n  a: {set: {stock.pe_ttm: 1}\n", encoding="utf-8")
    out = verdict("what-if", "600111", "--scenarios", str(broken))
    assert out.returncode == 2 and out.stderr.startswith(f"{broken}:3:1: error yaml-syntax: this is not valid YAML")
    missing = verdict("what-if", "600111", "--scenarios", str(tmp_path / "none.yaml"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_a_two_way_grid_rates_every_cell(ws: Any, verdict: Any, tmp_path: Path) -> None:  # type: ignore[misc]
    png = tmp_path / "grid.png"
    args = ["what-if", "600111", "--grid", "stock.dcf_optimistic_value=60:140:20", "--grid",
            "stock.pe_ttm=100:300:50"]
    out = verdict(*args, "--format", "json", "--chart", str(png))
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    rows, cols = d["axes"][0]["values"], d["axes"][1]["values"]
    assert rows == [60, 80, 100, 120, 140] and cols == [100, 150, 200, 250, 300]
    assert d["axes"][0]["now"] == 114.86 and d["axes"][1]["now"] == 86.26
    for x, row in zip(rows, d["cells"], strict=True):
        for y, cell in zip(cols, row, strict=True):
            want = _evaluate(ws, {"stock.dcf_optimistic_value": x, "stock.pe_ttm": y})
            assert (cell["rating"], cell["score"]) == (want.rating, want.score), (x, y)
    # the optimistic case moves the target from a Sell to a Buy; a PE above twice the top of the
    # growth guidance (269.2) caps a Buy at Hold
    assert {c["rating"] for row in d["cells"] for c in row} == {"Buy", "Hold", "Neutral", "Sell"}
    assert png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 10_000
    table = verdict(*args).stdout.splitlines()
    assert table[0] == "600111.SH Northern Rare Earth, facts as of 2026-01-20: Buy (9) at " \
                       "stock.dcf_optimistic_value 114.86, stock.pe_ttm 86.26"
    assert table[2].split() == ["stock.dcf_optimistic_value", "\\", "stock.pe_ttm", "100", "150", "200", "250",
                                "300"]
    assert table[4].split()[:3] == ["60", d["cells"][0][0]["rating"], f"({d['cells'][0][0]['score']:g})"]
    rows_csv = list(csv.DictReader(io.StringIO(verdict(*args, "--format", "csv").stdout)))
    assert len(rows_csv) == 25 and rows_csv[0] == {"stock.dcf_optimistic_value": "60", "stock.pe_ttm": "100",
                                                   "rating": d["cells"][0][0]["rating"],
                                                   "score": f"{d['cells'][0][0]['score']:g}"}


def test_a_one_way_grid_with_a_common_set(ws: Any, verdict: Any) -> None:  # type: ignore[misc]
    out = verdict("what-if", "600111", "--grid", "stock.pe_ttm=76:84:2", "--set", "stock.earnings_growth_low_pct=80",
                  "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["axes"][0]["values"] == [76, 78, 80, 82, 84] and d["set"] == {"stock.earnings_growth_low_pct": 80}
    for x, (cell,) in zip(d["axes"][0]["values"], d["cells"], strict=True):
        want = _evaluate(ws, {"stock.pe_ttm": x, "stock.earnings_growth_low_pct": 80})
        assert (cell["rating"], cell["score"]) == (want.rating, want.score)
    assert d["cells"][0][0] != d["cells"][-1][0]  # PE 80 (the growth) is the edge of valuation.pe-reasonable


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "stock.pe_tmm=30:90:10"], "--grid: unknown fact path 'stock.pe_tmm'. Did you mean 'stock.pe_ttm'"),
    (["--grid", "stock.board=1:2:1"], "--grid: 'stock.board' is text, not a number."),
    (["--grid", "stock.pe_ttm=90:30:10"], "needs FROM <= TO and a STEP above 0"),
    (["--grid", "stock.pe_ttm=30:90:0"], "needs FROM <= TO and a STEP above 0"),
    (["--grid", "stock.pe_ttm=30:90"], "is not PATH=FROM:TO:STEP"),
    (["--grid", "stock.pe_ttm=0:1000:1"], "has 1001 values (at most 201 on one axis)"),
    (["--grid", "stock.pe_ttm=30:90:10", "--grid", "stock.pe_ttm=1:2:1"], "--grid stock.pe_ttm is given twice"),
    (["--grid", "stock.pe_ttm=30:90:10", "--set", "stock.pe_ttm=3"], "stock.pe_ttm is set by --set and varied"),
    (["--grid", "a.b=1:2:1", "--grid", "c.d=1:2:1", "--grid", "e.f=1:2:1"], "unknown fact path 'a.b'"),
    (["--chart", "x.png"], "--chart draws a --grid's heat map"),
    (["--grid", "stock.pe_ttm=30:90:10", "--scenarios", "x.yaml"], "give --scenarios or --grid, not both"),
])
def test_bad_grids_are_refused(verdict: Any, args: list[str], message: str) -> None:  # type: ignore[misc]
    out = verdict("what-if", "600111", *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert message in out.stderr, out.stderr
