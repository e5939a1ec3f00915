"""Knowledge time: a fact is read as of D only if it was known on D (its source published, its bar traded)."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

from engine.output.evaluation import render_tree
from engine.pipeline import Workspace

BEFORE = dt.date(2026, 1, 19)  # the close the report quotes; its source [1] was published the next day
PUBLISHED = dt.date(2026, 1, 20)  # eastmoney-20260120 and the report itself


def _paths(ev) -> dict[str, object]:  # type: ignore[no-untyped-def]
    return {f.path: f for f in ev.facts}


def test_an_evaluation_before_a_sources_publication_does_not_use_it(ws: Workspace) -> None:
    before = ws.evaluate("600111", as_of=BEFORE)
    facts = _paths(before)
    # stated as of 2026-01-16 by a source published on 2026-01-20: not known on 01-19
    assert "stock.earnings_growth_low_pct" not in facts and "sector.supply_gap_2030_t" not in facts
    assert "commodity.prnd_oxide_change_pct" not in facts
    assert all(f.known_at is not None and f.known_at <= BEFORE for f in before.facts)
    assert {f.source for f in before.facts}.isdisjoint({"Eastmoney [1]", "seed report"})
    assert not any(f.rule == "earnings.growth-doubling" for f in before.fired)
    nf = {n.rule: n for n in before.not_fired}
    assert nf["earnings.growth-doubling"].missing == ["stock.earnings_growth_low_pct"]

    after = ws.evaluate("600111", as_of=PUBLISHED)
    growth = _paths(after)["stock.earnings_growth_low_pct"]
    assert growth.as_of == dt.date(2026, 1, 16) and growth.known_at == PUBLISHED  # describes 01-16, known 01-20
    assert any(f.rule == "earnings.growth-doubling" for f in after.fired)
    # on 01-19 only the undated database (its DCF cases, a PE above its history), the 01-14 note and the
    # prices are known: a target with 34% upside, but not the evidence of a Buy
    assert (before.rating, after.rating) == ("Hold", "Buy")


def test_the_json_and_the_tree_show_when_each_fact_became_known(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "600111", "--format", "json", "--no-record")
    assert out.returncode == 0, out.stderr
    facts = {f["path"]: f for f in json.loads(out.stdout)["facts"]}
    assert facts["sector.supply_gap_2030_t"]["as_of"] == "2026-01-16"
    assert facts["sector.supply_gap_2030_t"]["known_at"] == "2026-01-20"
    assert facts["stock.pe_ttm"]["known_at"] == facts["stock.pe_ttm"]["as_of"] == "2026-01-19"  # undated source
    assert facts["stock.close"]["known_at"] == "2026-01-20"  # a bar is known on its trading day
    tree = verdict("evaluate", "600111", "--explain", "--no-record").stdout
    assert re.search(r"sector\.supply_gap_2030_t = 140000 t \[Eastmoney \[1\], 2026-01-16, known 2026-01-20\]", tree)


def test_a_later_publication_date_hides_what_the_source_states(workdir: Path) -> None:
    sources = workdir / "facts" / "sources.yaml"
    sources.write_text(sources.read_text().replace("    date: 2026-01-20\n    url: \"https://finance.eastmoney",
                                                   "    date: 2026-01-23\n    url: \"https://finance.eastmoney"))
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    ev = ws.evaluate("600111")  # the bundle's date, 2026-01-20
    assert "stock.earnings_growth_low_pct" not in _paths(ev) and "sector.supply_gap_2030_t" not in _paths(ev)
    assert _paths(ws.evaluate("600111", as_of=dt.date(2026, 1, 23)))["sector.supply_gap_2030_t"].known_at == \
        dt.date(2026, 1, 23)


def test_known_at_given_on_a_fact_overrides_the_sources_date(workdir: Path) -> None:
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    text = stock.read_text()
    # the company's own guidance announcement, earlier than the article that reported it
    text = text.replace("{value: 116.67, as_of: 2026-01-16, source: eastmoney-20260120,",
                        "{value: 116.67, as_of: 2026-01-16, known_at: 2026-01-16, source: eastmoney-20260120,")
    # a database figure that only became available later than the day it describes
    text = text.replace("{value: 86.26, as_of: 2026-01-19, source: jinling-ai,",
                        "{value: 86.26, as_of: 2026-01-19, known_at: 2026-01-21, source: jinling-ai,")
    stock.write_text(text)
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    facts = _paths(ws.evaluate("600111", as_of=BEFORE))
    assert facts["stock.earnings_growth_low_pct"].known_at == dt.date(2026, 1, 16)
    assert "stock.earnings_growth_high_pct" not in facts  # the same article, no earlier date given
    pe = _paths(ws.evaluate("600111", as_of=PUBLISHED))["stock.pe_ttm"]
    assert pe.value == 42.5  # 86.26 is not known until 01-21: only the report's table value remains
    assert _paths(ws.evaluate("600111", as_of=dt.date(2026, 1, 21)))["stock.pe_ttm"].value == 86.26


def test_a_later_price_bar_is_not_known_before_its_day(ws: Workspace) -> None:
    facts = _paths(ws.evaluate("600111", as_of=BEFORE))
    assert facts["stock.close"].value == 51.07 and facts["stock.close"].known_at == BEFORE
    assert _paths(ws.evaluate("600111"))["stock.close"].value == 49.62


def test_replay_of_a_point_in_time_run_uses_what_was_known_then(verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    db = {"VERDICT_AUDIT_DB": str(tmp_path / "audit.sqlite3")}
    out = verdict("evaluate", "600111", "--as-of", "2026-01-19", "--format", "json", env_extra=db)
    assert out.returncode == 0, out.stderr
    run = json.loads(out.stdout)
    assert run["rating"] == "Hold"
    replay = verdict("audit", "replay", run["run_id"], env_extra=db)
    assert replay.returncode == 0 and "identical" in replay.stdout, replay.stdout


def test_the_tree_names_no_known_date_where_it_equals_the_as_of_date(ws: Workspace) -> None:
    tree = render_tree(ws.evaluate("600111", run_id="t"))
    assert "stock.pe_ttm = 86.26 x [Jinling AI [0], 2026-01-19]" in tree
