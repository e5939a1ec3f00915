"""Resolution edge cases the bundled rules never reach (found by mutation testing of resolve.py): fractional
scores, set overrides, a cap at the rating already given, the lowest band, entry bounds given high-to-low,
entries without a note."""

from __future__ import annotations

from pathlib import Path

from engine.pipeline import Workspace

EXTRA = """
  - id: valuation.quarter-point
    title: a fractional score
    when: stock.price > 0
    salience: 1000
    then:
      signal: {name: quarter, score: 0.25}
      entry: {horizon: long, advice: hold, low: 60, high: 50}
"""


def _open(workdir: Path, extra: str) -> Workspace:
    pack = workdir / "rules" / "valuation.yaml"
    pack.write_text(pack.read_text(encoding="utf-8") + extra, encoding="utf-8")
    return Workspace.open(workdir / "rules", workdir / "facts", cache=None)


def test_fractional_scores_reversed_bounds_and_notes(workdir: Path, ws: Workspace) -> None:
    base = ws.evaluate("600111")
    ev = _open(workdir, EXTRA).evaluate("600111")
    assert ev.score == base.score + 0.25  # not rounded to a whole number
    long = next(e for e in ev.entries if e.horizon == "long")
    assert long.rule == "valuation.quarter-point"  # the highest salience: its entry is the one given
    assert (long.low, long.high, long.note) == (50.0, 60.0, "")  # sorted; no note is an empty note


def test_a_set_override_and_a_cap_at_the_rating_already_given(workdir: Path, ws: Workspace) -> None:
    base = ws.evaluate("600111")
    ev = _open(workdir, """
  - id: valuation.set-neutral
    title: set
    when: stock.price > 0
    salience: 50
    then:
      rating: {value: Neutral, mode: set, reason: "a test"}
  - id: valuation.cap-at-same
    title: cap at what the set gave
    when: stock.price > 0
    then:
      rating: {value: Neutral, mode: cap}
""").evaluate("600111")
    assert base.rating != "Neutral"
    assert ev.rating == "Neutral"
    assert ev.rating_info.decided_by == "override by valuation.set-neutral (salience 50)"  # not 'capped at'


def test_a_score_below_every_band_names_it(workdir: Path) -> None:
    ev = _open(workdir, """
  - id: valuation.sink
    title: far below every band
    when: stock.price > 0
    then:
      signal: {name: sink, score: -100}
""").evaluate("600111")
    # the score's band is Sell, named as the band below every other; the policy then moves it, since a
    # Sell must lie within its label and the stock has 37% upside to its target
    first = ev.rating_info.steps[0]
    assert first.startswith(f"score {ev.score:g} below every other band") and first.endswith(": Sell")
    assert ev.rating == "Neutral" and ev.rating_info.decided_by.startswith("upside ")
