"""Golden files for the derivation tree: review the diff when it changes (pytest --update-golden)."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import check_golden

from engine.output.evaluation import render_markdown, render_tree

GOLDEN = Path(__file__).parent / "golden"


@pytest.mark.parametrize(("symbol", "name"), [("600111", "600111_explain.txt"), ("300127", "300127_explain.txt")])
def test_explain_tree_matches_golden(ws, update_golden, symbol, name):
    text = render_tree(ws.evaluate(symbol, run_id="golden"))
    check_golden(GOLDEN / name, text, update_golden)


def test_explain_names_rules_facts_and_sources(ws):
    text = render_tree(ws.evaluate("600111"))
    assert "decided by: score 9 >= 4" in text
    assert "<- rating.sector-tailwind (rating, rules/rating.yaml:" in text
    assert "<- signal structural_shortage from supply_demand.gap-widening" in text
    assert "stock.pe_ttm = 86.26 x [Jinling AI [0], 2026-01-19]" in text
    assert "valuation.pe-stretched-vs-history (rules/valuation.yaml:" in text and "needs stock.pe_hist_avg" in text


def test_cli_explain_prints_the_tree(verdict):
    out = verdict("evaluate", "600111", "--explain")
    assert out.returncode == 0 and out.stdout.startswith("600111.SH Northern Rare Earth: Buy (score 9)")


def test_markdown_lists_fired_rules(ws):
    md = render_markdown(ws.evaluate("300127"))
    assert "| horizon | advice | low | high | note | rule |" in md and "`valuation.upside-hold`" in md


def test_each_rule_and_each_derivation_is_shown_once(ws):
    ev = ws.evaluate("600111")
    text = render_tree(ev)
    for f in ev.fired:
        opened = [line for line in text.splitlines() if line.strip().startswith(f"<- {f.rule} (") and
                  not line.endswith("(see above)")]
        assert len(opened) == 1, (f.rule, opened)
        for c in f.comparisons:
            assert text.count(c.text) == 1, c.text
    derivations = [line.strip() for line in text.splitlines() if line.strip().startswith("derived: ")]
    assert len(derivations) == len(set(derivations)) > 3
    assert "<- valuation.pe-above-history-reported (valuation, rules/valuation.yaml:127) (see above)" in text


def test_depth_limits_how_far_signal_sources_are_opened(ws, verdict):
    ev = ws.evaluate("600111")
    full, shallow = render_tree(ev), render_tree(ev, depth=0)
    assert len(shallow.splitlines()) < len(full.splitlines())
    assert "<- signal demand_growth from supply_demand.magnet-demand-growth (not opened: deeper than --depth 0)" \
        in shallow
    assert "not opened" not in full and render_tree(ev, depth=1) == full  # the bundle chains one level deep
    out = verdict("evaluate", "600111", "--explain", "--depth", "0", "--no-record")
    assert out.returncode == 0 and out.stdout.rstrip("\n") == shallow.rstrip("\n")


def test_why_answers_why_not_first_then_the_tree(verdict, tmp_path):
    db = str(tmp_path / "audit.sqlite3")
    assert verdict("evaluate", "300127", "--audit-db", db).returncode == 0
    out = verdict("why", "300127", "--audit-db", db)
    assert out.returncode == 0, out.stderr
    assert out.stdout.index("Why not Buy") < out.stdout.index("Rating <- signals")
