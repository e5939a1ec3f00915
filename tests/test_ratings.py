"""Ratings that mean what they say: evidence before a rating, targets from a stated valuation method,
fragility, parameters with reasons, and lints that keep packs honest."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.derive import given_value, with_overrides
from engine.evidence import gate
from engine.pipeline import Workspace

PRICE_ONLY = """\
symbol: 300999.SZ
name: Price Only Magnets
sector: rare_earth_pm
exchange: SZ
board: chinext
prices:
  adjust: qfq
  volume_unit: lots
  segments:
    - {file: prices/gunark_tushare_qfq_2025H2_2026/300748.csv, source: tushare-gunark, anchor: 2026-04-07}
facts: {}
"""


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


# ------------------------------------------------------------------------------ evidence before a rating


def test_a_stock_with_prices_and_no_facts_of_its_own_is_not_a_buy_and_says_what_is_missing(workdir, verdict):
    """JL Mag's prices under another name, no facts of its own, in the rare earth sector with all its
    sector facts: the sector and the price history alone do not make a Buy."""
    (workdir / "facts" / "stocks" / "300999.yaml").write_text(PRICE_ONLY, encoding="utf-8")
    out = verdict("evaluate", "300999", "--format", "json", "--no-record", cwd=workdir)
    assert out.returncode == 0, out.stderr
    ev = json.loads(out.stdout)
    assert ev["rating"] != "Buy" and ev["target"] is None
    cov = ev["coverage"]
    present = {f["family"] for f in cov["families"] if f["present"]}
    assert {"sector", "technical"} <= present and "valuation" not in present and "valuation" in cov["missing"]
    (need,) = cov["needs"]
    assert need.startswith("Buy needs Valuation: a target from a valuation method")
    assert "valuation.sector-multiple needs stock.eps_ttm" in need
    assert any(w["rule"] == "policy.evidence" and "stock.eps_ttm" in w["message"] for w in ev["warnings"])
    # a sector that strong and an uptrend cannot lift it: with one more sector point it is still no Buy
    _edit(workdir / "rules" / "rating.yaml", "name: sector_tailwind\n        score: 2",
          "name: sector_tailwind\n        score: 4")
    louder = json.loads(verdict("evaluate", "300999", "--format", "json", "--no-record", cwd=workdir).stdout)
    assert louder["score"] >= 4 and louder["rating"] == "Hold"
    assert louder["rating_info"]["steps"][-1] == "Buy needs Valuation evidence, which is missing: Hold"
    table = verdict("evaluate", "300999", "--no-record", cwd=workdir)
    assert "Buy needs Valuation: a target from a valuation method" in table.stdout


def test_sector_and_commodity_facts_reach_only_their_sectors_stocks(workdir, verdict):
    """The same prices in an unrelated sector (an imported universe's bank, say): none of the rare earth
    sector's facts or commodity prices are its evidence, no rule reading them fires, nothing warns of them."""
    (workdir / "facts" / "stocks" / "300999.yaml").write_text(PRICE_ONLY, encoding="utf-8")
    (workdir / "facts" / "sectors" / "banks.yaml").write_text("sector: banks\nname: Banks\nfacts: {}\n",
                                                              encoding="utf-8")
    (workdir / "facts" / "stocks" / "300998.yaml").write_text(
        PRICE_ONLY.replace("300999", "300998").replace("rare_earth_pm", "banks"), encoding="utf-8")
    inside, outside = (json.loads(verdict("evaluate", s, "--format", "json", "--no-record", cwd=workdir).stdout)
                       for s in ("300999", "300998"))
    paths = {ns: {f["path"] for f in ev["facts"] if f["path"].split(".")[0] in ("sector", "commodity")}
             for ns, ev in (("in", inside), ("out", outside))}
    assert {"commodity.prnd_oxide_change_pct", "sector.supply_gap_2030_t"} <= paths["in"] and not paths["out"]
    fired_in = {f["rule"] for f in inside["fired"]}
    fired_out = {f["rule"] for f in outside["fired"]}
    assert {"risk.commodity-price-spike", "rating.sector-tailwind"} <= fired_in
    assert not {r for r in fired_out if r.split(".")[0] in ("risk", "rating", "supply_demand", "capital_flow")}
    assert not [w for w in outside["warnings"] if "rare earth" in w["message"].lower()]
    present = {f["family"] for f in outside["coverage"]["families"] if f["present"]}
    assert present.isdisjoint({"sector", "commodity"}) and outside["score"] < inside["score"]
    # the same price history scores its technicals alike in both sectors
    tech = {f["rule"] for f in inside["fired"] if f["rule"].split(".")[0] in ("trend", "momentum", "price_risk")}
    assert tech == {f["rule"] for f in outside["fired"] if f["rule"].split(".")[0] in ("trend", "momentum",
                                                                                        "price_risk")}


def test_commodities_name_sectors_that_exist(workdir, verdict):
    _edit(workdir / "facts" / "commodities.yaml", "sectors: [rare_earth_pm]", "sectors: [rare_earth]")
    out = verdict("evaluate", "600111", "--no-record", cwd=workdir)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert "facts/commodities.yaml:6:11: error unknown-sector: " \
           "commodities.yaml names sector 'rare_earth', which has no file in " \
           "sectors/. Did you mean 'rare_earth_pm'?" in out.stderr


def test_the_policy_moves_a_rating_its_evidence_or_upside_does_not_support(ws):
    policy = ws.book.policy
    everything = {"valuation", "earnings", "flows", "technical", "sector"}
    assert gate(policy, "Buy", everything, 25.0) == ("Buy", [])
    assert gate(policy, "Buy", everything - {"valuation"}, None) == (
        "Hold", ["Buy needs Valuation evidence, which is missing: Hold"])
    assert gate(policy, "Sell", {"technical"}, None) == (
        "Neutral", ["Sell needs Valuation evidence, which is missing: Neutral"])
    # the upside decides how far down a Buy goes; a price above the target is never a Buy
    assert gate(policy, "Buy", everything, 12.0)[0] == "Hold"
    assert gate(policy, "Buy", everything, 2.0)[0] == "Neutral"
    assert gate(policy, "Buy", everything, -2.0)[0] == "Neutral"
    assert gate(policy, "Buy", everything, -12.0) == ("Sell", [
        "upside -12.0% is below Buy's 20%: Hold", "upside -12.0% is below Hold's 5%: Neutral",
        "upside -12.0% is below Neutral's -5%: Sell"])
    # and a Sell with upside to its target is not a Sell
    assert gate(policy, "Sell", everything, 30.0) == ("Neutral", ["upside 30.0% is above Sell's -5%: Neutral"])
    assert gate(policy, "Hold", everything - {"valuation"}, None) == ("Hold", [])


def test_an_expected_benchmark_return_is_taken_off_the_upside(ws):
    policy = ws.book.policy.model_copy(deep=True)
    policy.scale.expected_benchmark_return_pct = 8
    rating, steps = gate(policy, "Buy", {"valuation"}, 25.0)
    assert rating == "Hold" and steps == ["upside 17.0% (less the benchmark's expected 8%) is below Buy's 20%: Hold"]


def test_requirements_name_declared_families_and_a_fallback(workdir, verdict):
    policy = workdir / "rules" / "policy.yaml"
    _edit(policy, "      requires: [valuation]\n      otherwise: Hold\n",
          "      requires: [valuaton]\n      otherwise: Hold\n")
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1 and "rating Buy requires unknown evidence family valuaton" in out.stdout
    _edit(policy, "      requires: [valuaton]\n      otherwise: Hold\n", "      requires: [valuation]\n")
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1 and "rating Buy has `requires` but no `otherwise`" in out.stdout


def test_a_rule_of_an_unknown_family_is_an_error_with_a_did_you_mean(workdir, verdict):
    _edit(workdir / "rules" / "earnings.yaml", "evidence: earnings\n", "evidence: earnigs\n")
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1
    assert "rules/earnings.yaml:3:11: error unknown-evidence: " \
           "evidence family 'earnigs' is not declared in the policy." in out.stdout
    assert "Did you mean 'earnings'?" in out.stdout


# ------------------------------------------------------------------------------ targets from a method


def test_the_target_does_not_move_with_the_price_alone(ws):
    sf = ws.symbol_facts("600111")
    base = ws.evaluate_facts(sf)
    assert base.rating == "Buy" and base.target is not None
    for price in (30.0, 56.0, 76.5, 120.0):
        moved = with_overrides(sf, ws.facts.catalog, {p: given_value(price, sf.chosen[p].value.as_of, "test")
                                                      for p in ("stock.price", "stock.close")})
        ev = ws.evaluate_facts(moved)
        assert ev.target is not None
        assert (ev.target.low, ev.target.high, ev.target.value) == (base.target.low, base.target.high,
                                                                    base.target.value), price
        assert ev.target.upside_pct == pytest.approx((68.21 / price - 1) * 100, abs=0.01)
        if price > base.target.value:
            assert ev.rating != "Buy", price
    # at 76.5 the price is 12% above the target value: the label for that is Sell
    at = with_overrides(sf, ws.facts.catalog, {"stock.close": given_value(76.5, sf.chosen["stock.close"].value.as_of,
                                                                          "test")})
    ev = ws.evaluate_facts(at)
    assert ev.rating == "Sell" and ev.rating_info.steps[-1] == "upside -10.8% is below Neutral's -5%: Sell"


def test_an_input_of_the_method_moves_the_target(ws):
    sf = ws.symbol_facts("600111")
    ov = {"stock.dcf_conservative_value": given_value(41.55, sf.chosen["stock.close"].value.as_of, "test")}
    ev = ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, ov))
    assert ev.target is not None and ev.target.value == pytest.approx(78.21)  # 0.5 x 41.55 + 0.5 x 114.86


def test_the_json_states_the_method_its_inputs_and_its_arithmetic(ws):
    ev = ws.evaluate("000831")
    (used,) = ev.valuations
    assert used.used and used.method == "valuation.sector-multiple" and used.kind == "pe_range"
    assert used.inputs == {"stock.close": 54.05, "stock.eps_ttm": 1.4076, "sector.target_pe_low": 54.1,
                           "sector.target_pe_high": 62.4}
    assert used.how.startswith("EPS 1.408 x PE 54.1 - 62.4 = 76.15 - 87.83, middle 81.99; upside +51.69%")
    facts = {f.path: f for f in ev.facts}
    assert facts["stock.upside_pct"].value == pytest.approx(51.69, abs=0.005)
    assert facts["stock.upside_pct"].source == "verdict (valuation method)"
    assert facts["stock.eps_ttm"].source == "seed report"


def test_a_scenario_method_with_weights_as_facts(ws, tmp_path):
    from engine.load import LoadedValuation
    from engine.model import ValuationMethod
    from engine.valuation import NotValued, Valued, compute

    m = ValuationMethod.model_validate({
        "id": "v.s", "title": "t", "method": "scenarios", "weight_uncertainty_pp": 10,
        "scenarios": [{"name": "bear", "value": "stock.dcf_conservative_value", "weight": "stock.pe_hist_avg"},
                      {"name": "bull", "value": "stock.dcf_optimistic_value", "weight": 0.75}]})
    lv = LoadedValuation(m, "v", "f", 1, "valuation")
    sf = ws.symbol_facts("600111")
    chosen = dict(with_overrides(sf, ws.facts.catalog, {"stock.pe_hist_avg": given_value(
        0.25, sf.chosen["stock.close"].value.as_of, "t")}).chosen)
    v = compute(lv, chosen)
    assert isinstance(v, Valued)
    assert v.value == pytest.approx(0.25 * 21.55 + 0.75 * 114.86, abs=0.005)
    # ten points of weight toward each end, as far as the weights allow
    assert (v.low, v.high) == pytest.approx((v.value - 0.1 * 93.31, v.value + 0.1 * 93.31), abs=0.01)
    assert v.bear_case_pct == pytest.approx((21.55 / 49.62 - 1) * 100, abs=0.01)
    chosen["stock.pe_hist_avg"] = chosen["stock.pe_hist_avg"]._replace(
        value=given_value(0.5, sf.chosen["stock.close"].value.as_of, "t"))
    bad = compute(lv, chosen)
    assert isinstance(bad, NotValued) and bad.reason == "the scenario weights add up to 1.25, not 1"


def test_weights_given_as_numbers_must_add_up(workdir, verdict):
    _edit(workdir / "rules" / "valuation.yaml", "weight: 0.5}\n      - {name: optimistic",
          "weight: 0.4}\n      - {name: optimistic")
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1 and "scenario weights must add up to 1, not 0.9" in out.stdout


# ------------------------------------------------------------------------------ fragility


def test_fragility_names_the_fact_near_its_threshold_and_the_score_near_its_edge(ws, workdir):
    galaxy = ws.evaluate("300127")
    frag = galaxy.fragility
    assert frag is not None and frag.fragile and frag.facts_checked
    (near,) = frag.facts
    # 38.42 / 1.2 = 32.02: five per cent below the close the upside reaches Buy's 20%
    assert near.path == "stock.close" and near.rating == "Buy" and near.threshold == pytest.approx(32.0167, abs=1e-3)
    # (-4.995%, rounded to two places either way); the policy's edge and the two rules reading upside 20
    assert near.change_pct == pytest.approx(-4.995, abs=0.006)
    assert near.rule == "policy: Buy min upside 20% / valuation.upside-buy / valuation.upside-hold"
    assert not ws.evaluate("600111").fragility.fragile
    # on the edge of its band, one signal decides
    _edit(workdir / "rules" / "policy.yaml", "min_score: 4\n", "min_score: 9\n")
    edge = Workspace.open(workdir / "rules", workdir / "facts").evaluate("600111")
    assert edge.rating == "Buy" and edge.fragility is not None and edge.fragility.fragile
    assert edge.fragility.score_edges == [{"edge": 9.0, "side": "below", "distance": 0.0, "rating": "Hold"}]
    assert edge.fragility.notes[0] == "score 9 is 0 above the band edge 9: one signal less makes it Hold"
    # and its +1 uptrend (MA20 48.27 over the half-year line 47.34) is one of those signals: the facts that
    # decide it are named, with both rules that test that line
    assert "stock.ma_20 48.2745 -> 47.3413 (-1.9%) makes it Hold (trend.downtrend / trend.uptrend)" \
        in edge.fragility.notes


def test_fragility_in_the_table_and_the_screen(verdict):
    one = verdict("evaluate", "300127", "--no-record")
    assert "Fragile: stock.close 33.7 -> 32.0167 (-5.0%) makes it Buy (policy: Buy min upside 20% / " \
           "valuation.upside-buy / valuation.upside-hold)" in one.stdout
    screen = verdict("evaluate", "--all", "--no-record", "--format", "json")
    rows = {e["symbol"]: e for e in json.loads(screen.stdout)}
    assert rows["300127.SZ"]["fragility"]["fragile"] and not rows["600111.SH"]["fragility"]["fragile"]
    assert set(rows["300127.SZ"]["coverage"]) == {"percent", "families", "missing", "needs"}


def test_the_screen_columns_fragile_upside_and_coverage(workdir, verdict):
    """A screen's `fragile` checks the score against the band edges (not the facts: 300127's close is near
    its edge, but its score is not); tables write upside and coverage as percentages, CSV and JSON keep
    the numbers."""
    cols = ["--columns", "rating,score,fragile,upside,coverage", "--no-record"]
    rows = {r["symbol"]: r for r in json.loads(verdict("evaluate", "--all", *cols, "--format", "json",
                                                       cwd=workdir).stdout)}
    assert not any(r["fragile"] for r in rows.values())
    full = {s: json.loads(verdict("evaluate", s, "--format", "json", "--no-record", cwd=workdir).stdout)
            for s in ("600111", "300127")}
    assert full["300127"]["fragility"]["fragile"] and not full["300127"]["fragility"]["score_edges"]
    assert rows["600111.SH"]["upside"] == pytest.approx(full["600111"]["target"]["upside_pct"], abs=1e-6)
    assert rows["600111.SH"]["coverage"] == full["600111"]["coverage"]["percent"]
    table = verdict("evaluate", "--all", *cols, cwd=workdir).stdout
    nre = next(line.split() for line in table.splitlines() if line.strip().startswith("600111.SH"))
    upside, coverage = full["600111"]["target"]["upside_pct"], full["600111"]["coverage"]["percent"]
    assert nre == ["600111.SH", "Buy", "9", "false", f"{upside:+.1f}%", f"{coverage:.0f}%"]
    csv_row = next(line for line in verdict("evaluate", "--all", *cols, "--format", "csv", cwd=workdir)
                   .stdout.splitlines() if line.startswith("600111.SH"))
    assert csv_row.split(",")[3:] == ["false", repr(round(upside, 6)), repr(coverage)]
    # 600111 at a Buy edge of 9: one signal less is a Hold, and the screen says so
    _edit(workdir / "rules" / "policy.yaml", "min_score: 4\n", "min_score: 9\n")
    rows = {r["symbol"]: r for r in json.loads(verdict("evaluate", "--all", *cols, "--format", "json",
                                                       cwd=workdir).stdout)}
    assert rows["600111.SH"]["rating"] == "Buy" and rows["600111.SH"]["fragile"] is True
    # and 300748 at 8, one signal below it, is a Hold that one signal more makes a Buy
    assert rows["300748.SZ"]["rating"] == "Hold" and rows["300748.SZ"]["score"] == 8
    assert sorted(s for s, r in rows.items() if r["fragile"]) == ["300748.SZ", "600111.SH"]
    only = verdict("evaluate", "--all", "--where", "fragile", "--columns", "score", "--format", "json",
                   "--no-record", cwd=workdir)
    assert sorted(r["symbol"] for r in json.loads(only.stdout)) == ["300748.SZ", "600111.SH"]


# ------------------------------------------------------------------------------ lints


def test_lint_flags_packs_that_reach_buy_on_sector_rules_alone(workdir, verdict):
    _edit(workdir / "rules" / "rating.yaml", "name: sector_tailwind\n        score: 2",
          "name: sector_tailwind\n        score: 3")
    out = verdict("rules", "check", "--strict", cwd=workdir)
    assert out.returncode == 1
    assert "rules/rating.yaml:8:5: warning sector-only-buy: " \
           "sector- and market-wide rules alone can score 4, which reaches the Buy " \
           "band (4). Only the policy's requirement of valuation evidence keeps a stock with no evidence of its own " \
           "from a Buy." in out.stdout


def test_lint_flags_a_policy_that_lets_sector_and_price_rules_alone_reach_buy(workdir, verdict):
    """The bundle's sector rules score 3 and the price rules (uptrend, momentum, volume) 3 more: a stock with
    only prices reaches the Buy band's 4, and only the policy's requirement of a valuation keeps it out."""
    assert "prices-and-sector-buy" not in verdict("rules", "check", "--format", "json", cwd=workdir).stdout
    _edit(workdir / "rules" / "policy.yaml", "      requires: [valuation]\n      otherwise: Hold\n", "")
    out = verdict("rules", "check", "--strict", cwd=workdir)
    assert out.returncode == 1
    assert "rules/rating.yaml:8:5: warning prices-and-sector-buy: " \
           "a stock with a price history and no facts of its own can score 6 on " \
           "sector-wide and price rules (rating.sector-tailwind (+2), capital_flow.sector-margin-breadth (+1), " \
           "momentum.winner (+1), trend.uptrend (+1), volume.expansion (+1)), which reaches the Buy band (4), and " \
           "the policy requires no evidence of the stock's own for a Buy." in out.stdout
    # and the lint is right: such a stock is then a Buy
    (workdir / "facts" / "stocks" / "300999.yaml").write_text(PRICE_ONLY, encoding="utf-8")
    _edit(workdir / "rules" / "rating.yaml", "name: sector_tailwind\n        score: 2",
          "name: sector_tailwind\n        score: 4")
    ev = json.loads(verdict("evaluate", "300999", "--format", "json", "--no-record", cwd=workdir).stdout)
    assert ev["rating"] == "Buy" and ev["target"] is None


def test_lint_threshold_without_reason_and_reason_without_threshold(workdir, verdict):
    pack = workdir / "rules" / "capital_flow.yaml"
    _edit(pack, "when: stock.margin_balance_change_pct >= 10", "when: stock.margin_balance_change_pct >= 12")
    out = verdict("rules", "check", "--format", "json", cwd=workdir)
    found = {(p["code"], p["rule"]): p for p in json.loads(out.stdout)}
    unexplained = found[("threshold-unexplained", "capital_flow.stock-margin-inflow")]
    assert unexplained["severity"] == "warning" and "the number 12 in this rule has no reason" in unexplained["message"]
    assert "why: {12:" in unexplained["hint"]
    assert ("why-unused", "capital_flow.stock-margin-inflow") in found


def test_lint_warns_of_a_fact_no_rule_reads_and_of_a_rule_of_no_family(workdir, verdict):
    _edit(workdir / "rules" / "supply_demand.yaml",
          " ({commodity.concentrate_change_qoq_pct:+.1f}% on the quarter)", "")
    _edit(workdir / "rules" / "capital_flow.yaml", "evidence: flows\n", "")
    out = verdict("rules", "check", cwd=workdir)
    assert "warning fact-unread: " \
           "'commodity.concentrate_change_qoq_pct' is stated in 1 fact file(s) but no rule, message or " \
           "valuation reads it." in out.stdout
    assert "facts/catalog.yaml:" in out.stdout
    assert "warning evidence-undeclared: this rule does not say which family of evidence it is" in out.stdout
    assert "[capital_flow.stock-margin-inflow]" in out.stdout


def test_lint_warns_of_a_target_that_moves_with_the_price(workdir, verdict):
    (workdir / "rules" / "naive.yaml").write_text(
        "pack: naive\nevidence: valuation\nrules:\n  - id: naive.target\n    when: stock.price > 0\n"
        "    why: {1.2: \"x\"}\n    then:\n      target: {low: stock.price, high: stock.price * 1.2}\n",
        encoding="utf-8")
    out = verdict("rules", "check", cwd=workdir)
    assert "warning target-moves-with-price: " \
           "the target is computed from stock.price, so it moves with the share price" in out.stdout


def _generated_and_bundled_runs(folder: Path) -> tuple[list[Any], list[float]]:
    """Runs of 60 symbols on a generated 120-rule book (bench/bench.py's) and of the bundle, with each
    one's fact margin: where the facts' fragility check is compared with another way of doing it."""
    import sys

    from conftest import FACTS, ROOT, RULES

    sys.path.insert(0, str(ROOT / "bench"))
    import bench  # type: ignore[import-not-found]

    bench.write_universe(folder, 60, 120, 11)
    ws = Workspace.open(folder / "rules", folder / "facts", cache=None)
    bundled = Workspace.open(RULES, FACTS)
    runs = [ws.run(s) for s in ws.symbols()] + [bundled.run(s) for s in bundled.symbols()]
    return runs, [r.workspace.book.policy.fragility.fact_margin_pct for r in runs]


def test_the_facts_fragility_check_finds_with_one_re_evaluation_what_two_find(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Each threshold near a fact is probed where its comparisons change (at it, or just beyond it), not at
    both points: what both points find (every comparison's operator unknown) is what is found."""
    from engine import fragility, whatif

    runs, margins = _generated_and_bundled_runs(tmp_path)
    found = [fragility._facts(r, m) for r, m in zip(runs, margins, strict=True)]
    solved = whatif.boundaries
    monkeypatch.setattr(whatif, "boundaries", lambda w, env: {
        p: [(t, rule, None) for t, rule, _ in items] for p, items in solved(w, env).items()})
    assert found == [fragility._facts(r, m) for r, m in zip(runs, margins, strict=True)]
    assert sum(map(len, found)) >= 3  # the bundle's stocks near their thresholds among them


def test_a_probe_no_rule_can_fire_differently_on_reuses_the_runs_firings(tmp_path):  # type: ignore[no-untyped-def]
    """The facts' fragility check runs durable_rules again only where some rule reading a moved fact
    changes its truth: over a generated book and the bundle, what it finds is what re-running every
    probe finds, with fewer durable runs."""
    from engine import fragility, rerating

    runs, margins = _generated_and_bundled_runs(tmp_path)
    made: list[rerating.Rerating] = []

    class Counted(rerating.Rerating):
        def __init__(self, run: Any) -> None:
            super().__init__(run)
            made.append(self)

    def found() -> list[Any]:
        made.clear()
        return [fragility._facts(r, m) for r, m in zip(runs, margins, strict=True)]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fragility, "Rerating", Counted)
        shortcut = found()
        reused, rerun = sum(x.reused for x in made), sum(x.rerun for x in made)
        mp.setattr(Counted, "fires_as_run", lambda self, sf, likely=(): False)
        every = found()
        assert sum(x.reused for x in made) == 0 and sum(x.rerun for x in made) == reused + rerun
    assert shortcut == every and sum(map(len, shortcut)) >= 3
    assert reused >= (reused + rerun) // 5, (reused, rerun)


def test_a_book_whose_signals_form_a_cycle_is_always_run_again(tmp_path):  # type: ignore[no-untyped-def]
    """`a` holds on a fact or on signal `b`, and `b` on signal `a`: moved below its threshold, the fact
    leaves both unfired, though `a`'s condition still holds on the run's own signals. Such a book is
    never answered from the run's firings."""
    import sys

    import yaml
    from conftest import ROOT

    from engine import fragility, rerating

    sys.path.insert(0, str(ROOT / "bench"))
    import bench  # type: ignore[import-not-found]

    bench.write_universe(tmp_path, 3, 0, 5)
    ws = Workspace.open(tmp_path / "rules", tmp_path / "facts", cache=None)
    symbol = next(s for s in ws.symbols() if "stock.f05" in ws.symbol_facts(s).chosen)
    value = float(ws.symbol_facts(symbol).chosen["stock.f05"].value.value)
    (tmp_path / "rules" / "cycle.yaml").write_text(yaml.safe_dump({"pack": "cycle", "rules": [
        {"id": "cycle.a", "when": f"stock.f05 > {round(value * 0.98, 4)} or signal.b",
         "then": {"signal": {"name": "a", "score": 5}}},
        {"id": "cycle.b", "when": "signal.a", "then": {"signal": {"name": "b", "score": 0}}}]}, sort_keys=False))
    ws = Workspace.open(tmp_path / "rules", tmp_path / "facts", cache=None)
    run = ws.run(symbol)
    assert run.rating == "Buy" and rerating.readers(ws.book) is None
    found = fragility._facts(run, 5.0)
    assert [(f.path, f.rating, f.rule) for f in found] == [("stock.f05", "Hold", "cycle.a")]
    with pytest.MonkeyPatch.context() as mp:  # were the cycle not seen, the run's firings would answer
        mp.setattr(rerating, "signal_cycle", lambda book: False)
        ws = Workspace.open(tmp_path / "rules", tmp_path / "facts", cache=None)
        assert fragility._facts(ws.run(symbol), 5.0) == []
