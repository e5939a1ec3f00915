"""what-if and sensitivity: every reported threshold flips the rating, a value just short does not."""

from __future__ import annotations

import json

import pytest

from engine.derive import given_value, with_overrides
from engine.whatif import epsilon, price_overrides, price_sensitivity, sensitivity, what_if


def _rating(ws, sf, path: str, value: float) -> str:  # type: ignore[no-untyped-def]
    ov = {path: given_value(value, sf.chosen[path].value.as_of, "test")}
    return ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, ov)).rating


@pytest.mark.parametrize("symbol", ["600111", "300748"])
def test_every_reported_threshold_flips_the_rating_and_just_short_does_not(ws, symbol) -> None:  # type: ignore[no-untyped-def]
    result = sensitivity(ws, symbol)
    assert result.rating == "Buy" and len(result.facts) >= 2
    sf = ws.symbol_facts(symbol)
    checked = 0
    for s in result.facts:
        for f in (s.up, s.down):
            if f is None:
                continue
            sign = 1 if f.direction == "up" else -1
            assert _rating(ws, sf, s.path, f.flip_value) == f.rating, (s.path, f)
            short = f.boundary - sign * epsilon(f.boundary) if f.inclusive else f.boundary
            assert _rating(ws, sf, s.path, short) == "Buy", (s.path, f, short)
            checked += 1
    assert checked >= 2
    nearest = result.facts[0]
    assert nearest.nearest_pct() <= result.facts[-1].nearest_pct()


def test_raising_the_pe_far_enough_lowers_the_rating_at_the_threshold_sensitivity_finds(ws) -> None:  # type: ignore[no-untyped-def]
    """PE (TTM) 86.26 against profit guidance of 116.67%-134.60%: above twice the top of the range (PEG
    above 2 even there) the price assumes more growth than guided, and the Buy is capped at Hold."""
    result = sensitivity(ws, "600111", paths=["stock.pe_ttm"])
    (s,) = result.facts
    assert s.up is not None and s.up.boundary == pytest.approx(269.2) and not s.up.inclusive
    assert s.up.rating == "Hold" and s.up.rule == "valuation.rich-without-growth"
    assert s.up.change_pct == pytest.approx(212.08, abs=0.01)
    sf = ws.symbol_facts("600111")
    assert _rating(ws, sf, "stock.pe_ttm", 269.2) == "Buy" and _rating(ws, sf, "stock.pe_ttm", 269.3) == "Hold"
    assert _rating(ws, sf, "stock.pe_ttm", 500) == "Hold"


def test_share_price_threshold(ws) -> None:  # type: ignore[no-untyped-def]
    result = price_sensitivity(ws, "600111")
    (s,) = result.facts
    up = s.up
    # the target (68.21) does not move with the price: the upside falls to Buy's 20% edge
    assert up is not None and up.rating == "Hold" and up.rule in ("valuation.upside-buy", "valuation.upside-hold")
    sf = ws.symbol_facts("600111")

    def at(price: float) -> str:
        return ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, price_overrides(ws, sf, price))).rating

    assert at(up.flip_value) == "Hold"
    assert at(up.boundary if not up.inclusive else up.boundary - epsilon(up.boundary)) == "Buy"
    moved = price_overrides(ws, sf, 2 * 51.07)
    assert moved["stock.pe_ttm"].value == pytest.approx(2 * 86.26)
    # the valuation's own facts are not moved but computed again from the moved price: the target stays
    assert "stock.upside_pct" not in moved and "stock.target_value" not in moved
    doubled = ws.evaluate_facts(with_overrides(sf, ws.facts.catalog, moved))
    assert doubled.target is not None and doubled.target.value == 68.21
    assert doubled.target.upside_pct == pytest.approx((68.21 / (2 * 49.62) - 1) * 100, abs=1e-3)


def test_what_if_without_overrides_changes_nothing(ws, verdict) -> None:  # type: ignore[no-untyped-def]
    w = what_if(ws, "600111", {})
    assert w.changes == [] and w.newly_fired == [] and w.stopped_firing == []
    out = verdict("what-if", "600111")
    assert out.returncode == 0 and "no overrides given: no change." in out.stdout


def test_what_if_shows_what_changed(verdict) -> None:  # type: ignore[no-untyped-def]
    # higher earnings move the target (EPS x the sector multiple): 14% upside becomes 29.5%
    out = verdict("what-if", "300127", "--set", "stock.eps_ttm=0.75", "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["baseline"]["rating"] == "Hold" and d["scenario"]["rating"] == "Buy"
    assert "rating Hold -> Buy" in d["changes"] and "target 35.68-41.15 -> 40.58-46.80" in d["changes"]
    assert d["newly_fired"] == ["valuation.upside-buy"]
    assert d["stopped_firing"] == ["valuation.upside-hold"]
    # on 2026-01-20 the prices show J at 31.9: a bound above 90 makes the stock overbought again
    bound = verdict("what-if", "600111", "--set", "stock.kdj_j=>90", "--format", "json")
    assert bound.returncode == 0 and json.loads(bound.stdout)["newly_fired"] == ["technical.kdj-overbought"]
    changes = json.loads(bound.stdout)["changes"]
    assert "score 9 -> 8" in changes
    assert any(c.startswith("new warning from technical.kdj-overbought: 'Short-term overbought") for c in changes)
    assert any(c.startswith("warning from facts.conflict gone: 'Sources disagree on KDJ J") for c in changes)
    refused = verdict("what-if", "600111", "--set", "stock.kdj_j_max_recent=>90")
    assert refused.returncode == 2 and "cannot be given as a bound" in refused.stderr


def test_what_if_unknown_path_and_bad_values(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("what-if", "600111", "--set", "stock.pe_tmm=40")
    assert out.returncode == 2 and "Did you mean 'stock.pe_ttm'" in out.stderr and "Traceback" not in out.stderr
    bad = verdict("what-if", "600111", "--set", "stock.pe_ttm=high")
    assert bad.returncode == 2 and "must be number" in bad.stderr
    form = verdict("what-if", "600111", "--set", "stock.pe_ttm")
    assert form.returncode == 2 and "is not PATH=VALUE" in form.stderr


def test_sensitivity_cli_writes_a_tornado_chart(verdict, tmp_path) -> None:  # type: ignore[no-untyped-def]
    png = tmp_path / "t.png"
    out = verdict("sensitivity", "600111", "--chart", str(png))
    assert out.returncode == 0, out.stderr
    assert "rating becomes Hold if PE (TTM) (stock.pe_ttm) rises above 269.2 (+212.1%)" in out.stdout
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_bad_cli_arguments_fail_cleanly(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("evaluate", "600111", "--bogus")
    assert out.returncode == 2 and "No such option: --bogus" in out.stderr and "Traceback" not in out.stderr
    out = verdict("backtest", "600111", "--every", "0")
    assert out.returncode == 2 and "Traceback" not in out.stderr
