"""Chaining runs inside durable_rules; edits to rule files change the next run."""

from __future__ import annotations

from pathlib import Path

from engine import rete
from engine.pipeline import Workspace, durable_facts


def test_chaining_three_levels_deep_runs_inside_durable(ws):
    sf = ws.symbol_facts("600111")
    result = rete.engine().run(ws.compiled, durable_facts(sf, ws.compiled), "chain-test:600111")
    by_rule = {f.rule: f for f in result.firings}
    # level 1: facts -> structural_shortage; level 2: signals -> sector_tailwind; level 3: -> entry
    entry = by_rule["entry.accumulate-in-range"]
    tailwind_fact = next(m for m in entry.matched.values() if m.get("name") == "sector_tailwind")
    assert tailwind_fact["by"] == "rating.sector-tailwind"
    tailwind = by_rule["rating.sector-tailwind"]
    shortage = next(m for m in tailwind.matched.values() if m.get("name") == "structural_shortage")
    assert shortage["by"] == "supply_demand.gap-widening"
    seq = {f.rule: f.seq for f in result.firings}
    assert seq["supply_demand.gap-widening"] < seq["rating.sector-tailwind"] < seq["entry.accumulate-in-range"]
    # the facts durable matched are the facts we gave it
    gap = by_rule["supply_demand.gap-widening"].matched["sector"]
    assert gap["supply_gap_2030_t"] == 140000 and gap["kind"] == "sector"


def test_negated_signal_waits_for_its_producers(ws):
    fired = {f.rule for f in ws.evaluate("600111").fired}
    # earnings_growth_strong fired, so the rule that needs its absence must not have fired
    assert "earnings.growth-doubling" in fired
    assert "earnings.growth-may-double" not in fired
    jl_mag = {f.rule for f in ws.evaluate("300748").fired}
    assert "earnings.growth-may-double" in jl_mag and "earnings.growth-doubling" not in jl_mag


def test_sessions_are_isolated(ws):
    a = ws.evaluate("600111", run_id="iso")
    ws.evaluate("300127", run_id="iso")
    b = ws.evaluate("600111", run_id="iso")
    assert a.model_dump_json() == b.model_dump_json()


def _set(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_changing_a_threshold_changes_the_next_run(workdir, verdict):
    before = Workspace.open(workdir / "rules", workdir / "facts")
    assert before.evaluate("600111").rating == "Buy"
    _set(workdir / "rules" / "valuation.yaml", "when: stock.pe_ttm > 2 * stock.earnings_growth_high_pct",
         "when: stock.pe_ttm > 0.5 * stock.earnings_growth_high_pct")
    after = Workspace.open(workdir / "rules", workdir / "facts")
    assert after.compiled.digest != before.compiled.digest
    ev = after.evaluate("600111")
    # PE 86.26 is now above the rule's 0.5 x 134.6: its -2 and its cap at Hold apply
    assert ev.rating == "Hold" and ev.score == before.evaluate("600111").score - 2
    assert ev.rating_info.decided_by == "capped at Hold by valuation.rich-without-growth"
    out = verdict("evaluate", "600111", "--format", "json", cwd=workdir)
    assert out.returncode == 0 and '"rating": "Hold"' in out.stdout


def test_changing_the_policy_bands_changes_the_rating(workdir):
    _set(workdir / "rules" / "policy.yaml", "min_score: 4\n", "min_score: 8\n")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    assert ws.evaluate("300748").rating == "Buy"  # score 8
    assert ws.evaluate("000831").rating == "Hold"  # score 7


def test_a_fact_edit_changes_the_facts_hash_and_result(workdir):
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    before = ws.evaluate("300748")
    _set(workdir / "facts" / "stocks" / "300748.yaml", "{value: 18.5,", "{value: 8.5,")
    ws2 = Workspace.open(workdir / "rules", workdir / "facts")
    after = ws2.evaluate("300748")
    assert after.facts_hash != before.facts_hash and after.ruleset_hash == before.ruleset_hash
    assert after.score == before.score - 1


def test_signal_sources_read_off_the_message_match_the_parsed_match(ws):
    for symbol in ws.symbols():
        sf = ws.symbol_facts(symbol)
        for f in rete.engine().run(ws.compiled, durable_facts(sf, ws.compiled), f"src:{symbol}").firings:
            parsed = sorted({m["by"] for m in f.matched.values() if m.get("kind") == "signal"})
            assert f.signal_sources == parsed, (symbol, f.rule)


def test_a_run_renders_into_the_same_evaluation(ws):
    run = ws.run("600111", run_id="same")
    ev = ws.evaluate("600111", run_id="same")
    assert (run.rating, run.score) == (ev.rating, ev.score)
    assert run.evaluation().model_dump() == ev.model_dump()
    assert [f.rule for f in run.firings] == [f.rule for f in ev.fired]
