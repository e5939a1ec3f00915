"""Price history validation, derived facts with provenance, point-in-time evaluation, freshness."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.errors import FactError
from engine.load import load_facts
from engine.pipeline import Workspace

NRE_CSV = Path("prices/gunark_tushare_qfq_2025H2_2026/600111.csv")


def _rewrite(path: Path, old: str, new: str) -> int:
    lines = path.read_text().splitlines(keepends=True)
    n = next(i for i, line in enumerate(lines) if line.startswith(old))
    lines[n] = new + "\n"
    path.write_text("".join(lines))
    return n + 1


@pytest.mark.parametrize(("old", "new", "fragment"), [
    ("2026-01-19,", "2026-01-19,51.0,51.07,50.0,50.29,1216331.76", "high 50.0 is below open/close/low"),
    ("2026-01-19,", "2026-01-19,51.0,51.07,52.29,51.5,1216331.76", "low 51.5 is above open/close"),
    ("2026-01-19,", "2026-01-19,51.0,51.07,52.29,50.29,-5", "volume -5 is below the lowest value allowed (0)"),
    ("2026-01-19,", "2026-01-16,51.0,51.07,52.29,50.29,1216331.76", "is not after the previous row's"),
    ("2026-01-19,", "2026-01-19,51.0,n/a,52.29,50.29,1216331.76", "unreadable row"),
])
def test_bad_rows_are_errors_with_their_line(workdir: Path, old: str, new: str, fragment: str) -> None:
    line = _rewrite(workdir / "facts" / NRE_CSV, old, new)
    with pytest.raises(FactError) as err:
        load_facts(workdir / "facts")
    hits = [p for p in err.value.problems if fragment in p.message]
    assert hits and hits[0].loc.line == line and hits[0].loc.file.endswith(str(NRE_CSV))


def test_a_missing_trading_day_is_an_error_unless_declared(workdir: Path) -> None:
    csv = workdir / "facts" / NRE_CSV
    csv.write_text("".join(line for line in csv.read_text().splitlines(keepends=True)
                           if not line.startswith("2026-01-14,")))
    with pytest.raises(FactError) as err:
        load_facts(workdir / "facts")
    assert any("1 trading day(s) missing: 2026-01-14" in p.message for p in err.value.problems)
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text().replace("  volume_unit: lots\n",
                                               "  volume_unit: lots\n  suspensions: [[2026-01-14, 2026-01-14]]\n"))
    assert load_facts(workdir / "facts").stocks["600111.SH"].series is not None


def test_series_of_different_basis_are_never_mixed(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    stock = workdir / "facts" / "stocks" / "300748.yaml"
    stock.write_text(stock.read_text().replace(
        "  segments:\n",
        "  segments:\n    - {file: prices/tushare_qfq_2022_2025/300748.csv, source: tushare-visiontrekker}\n"))
    out = verdict("evaluate", "300748", "--no-record", cwd=workdir)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "close ratio 0.99" in out.stderr and "different bases" in out.stderr
    assert "facts/prices/gunark_tushare_qfq_2025H2_2026/300748.csv" in out.stderr


def test_derived_facts_show_indicator_parameters_and_last_date(ws: Workspace) -> None:
    ev = ws.evaluate("600111")
    facts = {f.path: f for f in ev.facts}
    kdj = facts["stock.kdj_j"]
    assert kdj.source == "verdict (derived from prices)" and kdj.as_of.isoformat() == "2026-01-20"
    assert kdj.known_at == kdj.as_of  # a bar is known on its trading day
    assert "KDJ(9,3,3)" in kdj.derived and "981 qfq anchored 2026-04-07 daily bars to 2026-01-20" in kdj.derived
    assert "MACD(12,26,9)" in facts["stock.macd_dif"].derived
    checks = {c.path: c for c in ev.fact_checks}
    assert checks["stock.range_low"].agree and checks["stock.resistance"].agree and checks["stock.price"].agree
    # the stated price (51.07, as of 2026-01-19) is checked against that day's close, not the last one (49.62)
    assert checks["stock.price"].derived == 51.07 and "close of 2026-01-19" in checks["stock.price"].how
    assert not checks["stock.kdj_j"].agree and not checks["stock.macd_near_zero_axis"].agree
    assert checks["stock.kdj_j"].stated[0]["value"] == "> 80"


def test_as_of_uses_no_later_data(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    def run() -> dict:  # type: ignore[type-arg]
        out = verdict("evaluate", "600111", "--as-of", "2026-01-19", "--format", "json", "--no-record", cwd=workdir)
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        d.pop("run_id")
        return d

    before = run()
    csv = workdir / "facts" / NRE_CSV
    csv.write_text(csv.read_text().replace("2026-01-20,51.1,49.62,51.56,48.76", "2026-01-20,51.1,99.62,99.9,48.76"))
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    stock.write_text(stock.read_text().replace("facts:\n", "facts:\n  pe_hist_avg: {value: 10, as_of: 2026-01-20, "
                                                             "source: jinling-ai}\n", 1))
    after = run()
    after.pop("facts_hash")
    before.pop("facts_hash")
    assert after == before  # a later price and a later fact cannot alter the evaluation as of 2026-01-19
    later = verdict("evaluate", "600111", "--as-of", "2026-01-20", "--format", "json", "--no-record", cwd=workdir)
    assert json.loads(later.stdout)["as_of"] == "2026-01-20"
    assert '"stock.close"' not in later.stdout or "99.62" in later.stdout


def test_as_of_before_the_report_sees_only_what_existed(ws: Workspace) -> None:
    import datetime as dt

    ev = ws.evaluate("600111", as_of=dt.date(2026, 1, 13))
    assert ev.as_of == dt.date(2026, 1, 13)
    assert all(f.as_of is None or f.as_of <= dt.date(2026, 1, 13) for f in ev.facts)
    assert all(f.known_at is None or f.known_at <= dt.date(2026, 1, 13) for f in ev.facts)
    assert "stock.pe_ttm" not in {f.path for f in ev.facts}
    assert {f.path: f.value for f in ev.facts}["stock.close"] == 50.81


def test_stale_facts_warn_and_make_rules_not_evaluable(workdir: Path) -> None:
    policy = workdir / "rules" / "policy.yaml"
    policy.write_text(policy.read_text().replace("fundamentals: 130", "fundamentals: 2"))
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    ev = ws.evaluate("600111")
    stale = [w for w in ev.warnings if w.rule == "facts.stale"]
    assert stale and "fundamentals fact value(s) are older than the 2-day limit on 2026-01-20" in stale[0].message
    assert "stock.earnings_growth_low_pct" in stale[0].message
    nf = {n.rule: n for n in ev.not_fired}
    assert nf["earnings.growth-doubling"].status == "not_evaluable"
    assert nf["earnings.growth-doubling"].missing == ["stock.earnings_growth_low_pct"]


def test_bad_as_of_is_a_clear_error(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "600111", "--as-of", "19 Jan", "--no-record")
    assert out.returncode == 2 and "--as-of '19 Jan' is not a date" in out.stderr
