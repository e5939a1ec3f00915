"""The renderer (engine/render.py) against the renderer it replaced, and the captured trace
(engine/capture.py) against the run it captures: byte for byte, on the bundled facts, on a generated
universe, and (tests/test_compile.py) on random conditions over missing, bounded and dated facts."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path

import pytest
from conftest import ROOT
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_trace import reference_evaluation

from engine import capture
from engine.derive import fact_json, fact_text
from engine.errors import LookupFailure
from engine.jsontext import indented
from engine.model import FactValue
from engine.pipeline import Workspace
from engine.render import document, render

sys.path.insert(0, str(ROOT / "bench"))


def _same_as_reference(ws: Workspace, symbol: str, as_of: dt.date | None = None) -> None:
    run = ws.run(symbol, run_id="r", as_of=as_of)
    reference = reference_evaluation(run)
    assert run.document() == reference.model_dump_json(), symbol
    assert run.evaluation().model_dump() == reference.model_dump(), symbol  # dates stay dates in-process
    trace = run.trace()
    stored = capture.dumps(trace)
    assert capture.is_trace(stored) and capture.loads(stored) == trace  # plain JSON data: nothing lost
    assert document(render(capture.loads(stored), ws.rules, ws.compiled)) == run.document()
    rendered = render(trace, ws.rules, ws.compiled)  # --format json: as the standard library indents it
    assert indented(rendered) == json.dumps(json.loads(run.document()), ensure_ascii=False, indent=2), symbol


@pytest.mark.parametrize("as_of", [None, dt.date(2026, 1, 19), dt.date(2026, 1, 13)])
def test_every_bundled_symbol_renders_as_before(ws: Workspace, as_of: dt.date | None) -> None:
    for symbol in ws.symbols():
        _same_as_reference(ws, symbol, as_of)


def test_a_generated_universe_renders_as_before(tmp_path: Path) -> None:
    import bench  # type: ignore[import-not-found]

    bench.write_universe(tmp_path, 40, 120, 7)
    ws = Workspace.open(tmp_path / "rules", tmp_path / "facts", cache=None)
    for symbol in ws.symbols():
        _same_as_reference(ws, symbol)


@pytest.mark.parametrize("as_of", [None, dt.date(2026, 1, 19)])
def test_the_compiled_conditions_answer_as_the_evaluator(ws: Workspace, as_of: dt.date | None) -> None:
    """render.Conditions (what the fragility check's probes ask) gives expr.truth's answer for every rule on
    every bundled symbol: numbers, bounds (`> 140`), dates, missing facts and signals among them, and
    again with a number moved onto and past one of the rule's thresholds."""
    from engine import expr
    from engine.render import Conditions
    from engine.resolve import signal_env

    conditions = Conditions(ws.rules, ws.compiled)
    kinds: set[str] = set()
    bounded = 0
    for symbol in ws.symbols():
        run = ws.run(symbol, as_of=as_of)
        sigs = signal_env(run.resolution.signals)
        base = run.facts.values()
        fact_sets = [base]
        for path, fv in base.items():
            if fv.is_point and type(fv.value) is float:
                fact_sets += [{**base, path: FactValue(value=x, as_of=fv.as_of, source="moved")}
                              for x in (fv.value * 0.95, fv.value * 1.05)]
        for facts in fact_sets:
            vals = Conditions.values(facts)
            env = expr.EvalEnv(facts, sigs, run.facts.date)
            for rule_id, lr in ws.rules.items():
                got = conditions.truth(rule_id, facts, vals, sigs, run.facts.date)
                assert got == expr.truth(lr.cond, env), (symbol, rule_id)
                kinds.add(repr(got))
        bounded += sum(not fv.is_point for fv in base.values())
    assert kinds == {"True", "False", "None"} and bounded  # bounds among the facts read


def test_firings_store_which_asserted_fact_they_matched(ws: Workspace) -> None:
    run = ws.run("600111", run_id="r")
    trace = run.trace()
    assert [rule for rule, _ in trace["firings"]] == [f.rule for f in run.firings]
    for (_, matched), f in zip(trace["firings"], run.firings, strict=True):
        rebuilt = {alias: trace["asserted"][m] if isinstance(m, str) else m for alias, m in matched.items()}
        assert rebuilt == f.matched  # what durable_rules gave, message parsed in full
    assert any(isinstance(m, str) for _, matched in trace["firings"] for m in matched.values())
    assert len(capture.dumps(trace)) < len(run.document())


def test_the_facts_hash_reads_facts_as_their_models_dump_them(ws: Workspace) -> None:
    """derive.fact_json stands in for FactValue.model_dump(mode="json") in the facts hash: a field
    added to FactValue must be added there too (or the hash would not cover it)."""
    seen = 0
    for symbol in ws.symbols():
        for c in ws.symbol_facts(symbol).chosen.values():
            for fv in (c.value, *c.alternatives):
                # the same fields, already in sorted order (the hash writes them without sorting again)
                assert json.dumps(fact_json(fv)) == json.dumps(fv.model_dump(mode="json"), sort_keys=True)
                assert fact_text(fv) == json.dumps(fv.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
                seen += 1
    assert seen > 100


def test_the_facts_hash_is_the_documented_sorted_json_of_the_facts_their_sources_and_the_header(
        ws: Workspace) -> None:
    """SymbolFacts.digest writes its text piece by piece; it must stay the hash of the plain formula (or
    every recorded run would replay as changed)."""
    compared = 0
    for symbol in ws.symbols():
        for day in (None, dt.date(2026, 3, 2)):  # the bundle's facts, and one of its price histories' days
            try:
                sf = ws.symbol_facts(symbol, as_of=day)
            except LookupFailure:  # nothing about the stock known that early
                continue
            used = {c.value.source for c in sf.chosen.values()} | {
                a.source for c in sf.chosen.values() for a in c.alternatives}
            file = sf.stock.file
            blob = {"symbol": file.model_dump(mode="json", exclude={"facts"} | (
                        set() if file.indicators else {"indicators"})),
                    "facts": {p: {"chosen": c.value.model_dump(mode="json"),
                                  "alternatives": [a.model_dump(mode="json") for a in c.alternatives]}
                              for p, c in sf.chosen.items()},
                    "sources": {s: ws.facts.sources[s].model_dump(mode="json") for s in used
                                if s in ws.facts.sources}}
            plain = json.dumps(blob, sort_keys=True, ensure_ascii=False)
            assert sf.digest(ws.facts.sources) == hashlib.sha256(plain.encode()).hexdigest(), (symbol, day)
            compared += 1
    assert compared >= len(ws.symbols()) + 5


def test_a_rendered_evaluation_is_not_mistaken_for_a_trace(ws: Workspace) -> None:
    text = ws.run("300127", run_id="r").document()
    assert not capture.is_trace(text)
    with pytest.raises(ValueError, match="not a trace"):
        capture.loads(text)


def test_an_evaluation_with_tiny_numbers_is_indented_as_python_json_does(ws: Workspace) -> None:
    rendered = json.loads(ws.run("600111", run_id="r").document())
    rendered["score"], rendered["fragility"]["score_edges"] = 1e-06, [{"edge": 2.5e-05, "note": "0.00001 in text"}]
    text = indented(rendered)
    assert text == json.dumps(rendered, ensure_ascii=False, indent=2)
    assert '"score": 1e-06' in text and '"edge": 2.5e-05' in text


_texts = st.text(st.characters(codec="utf-8"), max_size=12)  # quotes, backslashes, controls, CJK
_numbers = st.none() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.sampled_from([-0.0, 1e-7, 2.5e-05])


@settings(max_examples=2000)
@given(value=st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | _texts | st.dates(),
       gt=_numbers, lte=_numbers, known=st.none() | st.dates(), as_of=st.dates(), source=_texts, unit=_texts,
       note=_texts, basis=_texts)
def test_a_fact_s_hash_text_is_its_model_dump_as_sorted_json(value, gt, lte, known, as_of, source, unit, note,  # type: ignore[no-untyped-def]
                                                            basis) -> None:
    fv = FactValue.model_construct(value=value, gt=gt, gte=None, lt=None, lte=lte, as_of=as_of, known_at=known,
                                   source=source, unit=unit, note=note, basis=basis)
    assert fact_text(fv) == json.dumps(fv.model_dump(mode="json"), sort_keys=True, ensure_ascii=False)
