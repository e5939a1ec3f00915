"""The fast load of a universe: fact entries built without pydantic where cheap checks prove them
well-formed, names without a Path per file. It must load the same facts and report the same problems,
word for word and at the same file:line:col, as validating every entry with the model."""

from __future__ import annotations

import copy
import datetime as dt
import math
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from engine import load
from engine.load import checked_fact, display_path, fact_entries, load_facts
from engine.model import FactValue
from engine.parsecache import ParseCache
from engine.yamlsrc import parse_yaml

# One stock whose facts have every kind of fault an entry can have, beside good entries of each form.
BAD_STOCK = """\
symbol: 600001.SH
name: Test Stock
sector: rare_earth_pm
exchange: SH
facts:
  price: {value: 12.5, unit: RMB, as_of: 2026-01-19, source: seed-report}
  pe_ttm: {value: 1, as_of: "2026-02-30", source: seed-report}
  pe_hist_avg: {value: 51, as_of: 2026-01-19, source: nowhere}
  pe_above_hist_avg: {value: 3, as_of: 2026-01-19, source: seed-report}
  pe: {value: 1e5, as_of: 2026-01-19, source: seed-report}
  pb: {gt: 10, gte: 11, as_of: 2026-01-19, source: seed-report}
  ps: {value: 5, valeu: 5, as_of: 2026-01-19, source: seed-report}
  ps_ttm: {value: 5, as_of: 2026-01-19 10:00:00, source: seed-report}
  dv_ratio: {value: .inf, as_of: 2026-01-19, source: seed-report}
  dv_ttm: {value: [1], as_of: 2026-01-19, source: seed-report}
  turnover_rate: {gt: 1, as_of: 2026-01-19, source: seed-report}
  volume_ratio: {value: true, as_of: 2026-01-19, source: seed-report}
  total_mv: {value: 5, as_of: 2026-01-19, source: 7}
  circ_mv: {value: 5, as_of: 2026-01-19}
  eps_ttm:
    - {value: 1.5, as_of: 2026-01-19, source: seed-report}
    - {value: "2.0", as_of: 2026-01-19, source: seed-report}
  dcf_conservative_value: {value: 5, as_of: "2026-01-19", source: seed-report, note: 5}
  dcf_optimistic_value: {value: 5, as_of: "2026-1-19", source: seed-report}
  report_target_low: {value: 5, as_of: "20260119", source: seed-report}
  report_target_high: {value: 5, as_of: 2026-01-19, known_at: "2026-01-21", source: seed-report}
  target_low: {lt: 5, lte: 6, as_of: 2026-01-19, source: seed-report}
  target_high: {value: 5, as_of: 2026-01-19, source: seed-report, unit: null}
  upside_pct: {value: 1e400, as_of: 2026-01-19, source: seed-report}
  earnings_growth_low_pct: {gte: 100, as_of: 2026-01-19, source: seed-report}
  earnings_growth_high_pct: {}
  mining_quota_share_pct: 12
"""

# What validating every entry with the model reported for BAD_STOCK (checked against the load before the
# fast path existed): the fast path must not change a word, a line or a column. (One hint was reworded since,
# on purpose: a number in quotes is told to lose its quotes, not to write an exponent.)
BAD_STOCK_PROBLEMS = [
    "facts/stocks/600001.yaml:7:29 date-from-datetime-parsing: 'as_of': input should be a valid date or "
    "datetime, day value is outside expected range. | ",
    "facts/stocks/600001.yaml:8:16 unknown-source: source 'nowhere' is not listed in facts/sources.yaml. | Add "
    "it there with title, publisher, date and address.",
    "facts/stocks/600001.yaml:9:22 fact-type: 'stock.pe_above_hist_avg' must be true or false, not 3. | The "
    "catalog declares it as bool.",
    "facts/stocks/600001.yaml:10:7 fact-type: 'stock.pe' must be a number, not '1e5' (YAML reads that as text: "
    "write the exponent as 1.0e+5). | The catalog declares it as number.",
    "facts/stocks/600001.yaml:11:7 value-error: 'the document': value error, give at most one lower bound (`gt` "
    "or `gte`). | ",
    "facts/stocks/600001.yaml:12:18 unknown-key: unknown key 'valeu'. | Did you mean 'value'?",
    "facts/stocks/600001.yaml:13:29 date-from-datetime-inexact: 'as_of': datetimes provided to dates should "
    "have zero time - e.g. be exact dates. | ",
    "facts/stocks/600001.yaml:14:13 fact-type: 'stock.dv_ratio' value inf is not a finite number. | The catalog "
    "declares it as number.",
    "facts/stocks/600001.yaml:15:19 date-type: 'value.date': input should be a valid date. | ",
    "facts/stocks/600001.yaml:16:18 fact-type: 'stock.turnover_rate' is given only as a bound, which the "
    "catalog does not allow for it (set bounds: true). | The catalog declares it as number.",
    "facts/stocks/600001.yaml:17:17 fact-type: 'stock.volume_ratio' must be a number, not True. | The catalog "
    "declares it as number.",
    "facts/stocks/600001.yaml:18:51 string-type: 'source': input should be a valid string. | ",
    "facts/stocks/600001.yaml:19:12 missing: 'source' is required here but missing. | Add 'source:' to this entry.",
    "facts/stocks/600001.yaml:22:7 fact-type: 'stock.eps_ttm' must be a number, not the text '2.0' (written in "
    "quotes: write it without them). | The catalog declares it as number.",
    "facts/stocks/600001.yaml:23:86 string-type: 'note': input should be a valid string. | ",
    "facts/stocks/600001.yaml:24:43 date-from-datetime-parsing: 'as_of': input should be a valid date or "
    "datetime, input is too short. | ",
    "facts/stocks/600001.yaml:25:40 date-from-datetime-inexact: 'as_of': datetimes provided to dates should "
    "have zero time - e.g. be exact dates. | ",
    "facts/stocks/600001.yaml:27:15 value-error: 'the document': value error, give at most one upper bound "
    "(`lt` or `lte`). | ",
    "facts/stocks/600001.yaml:28:73 string-type: 'unit': input should be a valid string. | ",
    "facts/stocks/600001.yaml:29:15 fact-type: 'stock.upside_pct' must be a number, not '1e400' (YAML reads "
    "that as text: write the exponent as 1.0e+5). | The catalog declares it as number.",
    "facts/stocks/600001.yaml:31:29 missing: 'as_of' is required here but missing. | Add 'as_of:' to this entry.",
    "facts/stocks/600001.yaml:31:29 missing: 'source' is required here but missing. | Add 'source:' to this entry.",
    "facts/stocks/600001.yaml:32:27 model-type: 'the document' must be a mapping of keys to values. | ",
]


def _rendered(problems: list[Any]) -> list[str]:
    return [f"{p.loc.file}:{p.loc.line}:{p.loc.col} {p.code}: {p.message} | {p.hint}" for p in problems]


@pytest.fixture()
def bad_universe(workdir: Path) -> Path:
    (workdir / "facts" / "stocks" / "600001.yaml").write_text(BAD_STOCK, encoding="utf-8")
    return workdir / "facts"


def _slow(_: Any) -> None:
    return None


def test_a_bad_stock_is_reported_as_before_on_every_path(bad_universe: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    cache_dir = tmp_path / "parse-cache"
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(cache_dir))
    loads = {"no cache": load_facts(bad_universe, partial=True)}
    cold = ParseCache.default(bad_universe)
    loads["cold cache"] = load_facts(bad_universe, partial=True, cache=cold)
    warm = ParseCache.default(bad_universe)
    loads["warm cache"] = load_facts(bad_universe, partial=True, cache=warm)
    assert cold is not None and warm is not None and cold.misses > 0 and warm.misses == 0
    monkeypatch.setattr(load, "checked_fact", _slow)  # every entry through the model, as before
    loads["model only"] = load_facts(bad_universe, partial=True, cache=ParseCache.default(bad_universe))
    for name, base in loads.items():
        ours = [p for p in base.skipped if p.loc.file == "facts/stocks/600001.yaml"]
        assert _rendered(ours) == BAD_STOCK_PROBLEMS, name
        assert list(base.skipped_files) == ["facts/stocks/600001.yaml"], name
        assert sorted(base.stocks) == sorted(loads["no cache"].stocks), name


def test_a_universe_loads_the_same_facts_with_and_without_the_fast_path(workdir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    fast = load_facts(workdir / "facts", partial=True)
    monkeypatch.setattr(load, "checked_fact", _slow)
    slow = load_facts(workdir / "facts", partial=True)
    assert list(fast.stocks) == list(slow.stocks) and fast.files == slow.files
    for sym, s in fast.stocks.items():
        other = slow.stocks[sym].facts
        assert list(s.facts) == list(other)
        for name, values in s.facts.items():
            assert [_exact(v) for v in values] == [_exact(v) for v in other[name]], (sym, name)


def _exact(fv: FactValue) -> tuple[Any, ...]:
    """Everything of a model that could tell two apart: fields in order with their types, fields set."""
    return (tuple((k, type(v), repr(v)) for k, v in fv.__dict__.items()), frozenset(fv.model_fields_set),
            fv.__pydantic_extra__, fv.__pydantic_private__)


# Entries from every kind of YAML value, right and wrong: the fast path either builds exactly the model
# pydantic validates, or steps aside.
_dates = st.dates(dt.date(1990, 1, 1), dt.date(2040, 12, 31))
_texts = st.one_of(st.sampled_from(["2026-01-19", "2026-02-30", "2026-1-19", "20260119", "2026-W03-1",
                                    "２０２６-01-19", "2026-01-19T00:00", " 2026-01-19", "gen", "", "1e5"]),
                   _dates.map(str), st.text(max_size=12))
_anything = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**63),
                      st.floats(allow_nan=True, allow_infinity=True), _texts, _dates,
                      st.datetimes(dt.datetime(1990, 1, 1), dt.datetime(2040, 1, 1)),
                      st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                           max_size=2))
_keys = st.sampled_from([*FactValue.model_fields, "valeu", "As_of", "sources", 1])
_entries = st.dictionaries(_keys, _anything, max_size=8)
_plain = st.fixed_dictionaries(
    {"as_of": st.one_of(_dates, _dates.map(str)), "source": st.text(max_size=8)},
    optional={"unit": st.text(max_size=4), "note": st.text(max_size=8), "basis": st.text(max_size=4),
              "known_at": st.one_of(st.none(), _dates, _dates.map(str))},
).flatmap(lambda base: st.one_of(
    st.fixed_dictionaries({**{k: st.just(v) for k, v in base.items()},
                           "value": st.one_of(st.booleans(), st.integers(), st.floats(), st.text(max_size=8),
                                              _dates)}),
    st.fixed_dictionaries({**{k: st.just(v) for k, v in base.items()},
                           "gt": st.one_of(st.integers(), st.floats()),
                           "lte": st.one_of(st.none(), st.integers(), st.floats())}),
))


def _validated(item: Any) -> FactValue | None:
    try:
        return FactValue.model_validate(copy.deepcopy(item))
    except ValidationError:
        return None


@settings(max_examples=400)
@given(_entries)
def test_the_fast_path_builds_what_pydantic_validates_or_steps_aside(item: dict[Any, Any]) -> None:
    fast = checked_fact(item)
    if fast is not None:
        ref = _validated(item)
        assert ref is not None, "built an entry the model refuses"
        assert _exact(fast) == _exact(ref)


@settings(max_examples=200)
@given(_plain)
def test_a_plainly_well_formed_entry_takes_the_fast_path(item: dict[str, Any]) -> None:
    ref = _validated(item)
    assert ref is not None
    fast = checked_fact(item)
    assert fast is not None, "a well-formed entry went through pydantic"
    assert _exact(fast) == _exact(ref)


def test_a_fast_built_model_behaves_as_a_validated_one() -> None:
    item = {"value": 51.07, "as_of": "2026-01-19", "source": "seed-report"}
    fast, ref = checked_fact(dict(item)), FactValue.model_validate(item)
    assert fast is not None and fast == ref and fast.model_dump() == ref.model_dump()
    for fv in (fast, ref):
        fv.known_at = dt.date(2026, 1, 20)  # as loading fills it from the source's date
    assert _exact(fast) == _exact(ref) and fast.model_fields_set == {"value", "as_of", "source", "known_at"}
    assert _exact(pickle.loads(pickle.dumps(fast))) == _exact(ref)
    assert _exact(copy.deepcopy(fast)) == _exact(ref) and _exact(fast.model_copy()) == _exact(ref)
    other = checked_fact(dict(item))
    assert other is not None and other.known_at is None  # models share no state
    assert math.isnan(checked_fact({**item, "value": float("nan")}).value)  # type: ignore[union-attr]


def test_fact_entries_report_the_same_with_and_without_the_fast_path(monkeypatch: pytest.MonkeyPatch,
                                                                     bad_universe: Path) -> None:
    base = load_facts(bad_universe, partial=True)
    doc, errs = parse_yaml(BAD_STOCK, "stocks/600001.yaml")
    assert not errs
    built: list[FactValue] = []

    def counting(item: Any) -> FactValue | None:
        fv = checked_fact(item)
        if fv is not None:
            built.append(fv)
        return fv

    runs = []
    for checker in (counting, _slow):
        monkeypatch.setattr(load, "checked_fact", checker)
        problems: list[Any] = []
        facts = fact_entries(doc, doc.data["facts"], "stock", base.catalog, base.sources, problems)
        runs.append((_rendered(problems), {k: [_exact(v) for v in vs] for k, vs in facts.items()}))
    assert runs[0] == runs[1]
    assert sorted(runs[0][1]) == ["earnings_growth_low_pct", "eps_ttm", "price", "report_target_high"]
    assert len(built) == 12  # the good entries and those only the catalog or sources refuse: no pydantic
    price = facts["price"][0]
    assert price.known_at == dt.date(2026, 1, 20) and "known_at" in price.model_fields_set  # the source's date


@pytest.mark.parametrize("spelling", ["relative", "dotted", "absolute", "cwd"])
def test_stock_files_are_named_as_display_path_names_them(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                          spelling: str) -> None:
    (workdir / "facts" / "stocks" / "600001.yaml").write_text(BAD_STOCK, encoding="utf-8")
    monkeypatch.chdir(workdir / "facts" if spelling == "cwd" else workdir)
    root = {"relative": Path("facts"), "dotted": Path("./facts/../facts"), "absolute": workdir / "facts",
            "cwd": Path(".")}[spelling]
    base = load_facts(root, partial=True)
    path = root / "stocks" / "600001.yaml"
    assert list(base.skipped_files) == [display_path(path, root)]
    assert {p.loc.file for p in base.skipped} == {display_path(path, root)}
    assert os.path.join("stocks", "600111.yaml") in base.files


def test_a_duplicate_symbol_leaves_the_first_file_loaded(workdir: Path) -> None:
    stocks = workdir / "facts" / "stocks"
    (stocks / "600112.yaml").write_text((stocks / "600111.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    base = load_facts(workdir / "facts", partial=True)
    assert base.stocks["600111.SH"].path == "facts/stocks/600111.yaml"
    assert [(p.loc.file, p.code) for p in base.skipped] == [("facts/stocks/600112.yaml", "duplicate-symbol")]
    assert len(base.stocks) == 5 and "stocks/600112.yaml" not in base.files


def test_a_stock_with_a_problem_after_it_was_added_is_left_out_alone(workdir: Path) -> None:
    stock = workdir / "facts" / "stocks" / "300127.yaml"
    stock.write_text(stock.read_text(encoding="utf-8").replace("sector: rare_earth_pm", "sector: rare_earth"),
                     encoding="utf-8")
    base = load_facts(workdir / "facts", partial=True)
    assert sorted(base.stocks) == ["000831.SZ", "300224.SZ", "300748.SZ", "600111.SH"]
    assert [(p.loc.file, p.loc.line, p.code) for p in base.skipped] == [("facts/stocks/300127.yaml", 6,
                                                                         "unknown-sector")]


def test_unknown_price_and_indicator_sources_keep_their_positions(workdir: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # Found after the fast path built the stock (its parsed form already dropped): the file is read again
    # with positions, warm cache or not (the positions and words the load gave before the fast path).
    stock = workdir / "facts" / "stocks" / "600111.yaml"
    text = stock.read_text(encoding="utf-8").replace("source: tushare-gunark", "source: tushare-gunarc")
    stock.write_text(text.replace("facts:\n", "indicators:\n  - {file: daily/600111.csv, source: tushre}\n"
                                              "facts:\n", 1), encoding="utf-8")
    monkeypatch.setenv("VERDICT_CACHE_DIR", str(tmp_path / "parse-cache"))
    expected = [
        "facts/stocks/600111.yaml:13:5 unknown-source: price source 'tushare-gunarc' is not listed in "
        "facts/sources.yaml. | Did you mean 'tushare-gunark'?",
        "facts/stocks/600111.yaml:16:38 unknown-source: indicator source 'tushre' is not listed in "
        "facts/sources.yaml. | ",
    ]
    for _ in range(2):  # cold, then warm
        base = load_facts(workdir / "facts", partial=True, cache=ParseCache.default(workdir / "facts"))
        assert sorted(_rendered(base.skipped)) == expected
        assert "600111.SH" not in base.stocks and len(base.stocks) == 4


@pytest.mark.parametrize("field", ["value", "gt"])
def test_an_integer_beyond_any_float_is_a_problem_not_a_crash(bad_universe: Path, field: str) -> None:
    stock = bad_universe / "stocks" / "600001.yaml"
    huge = "-1" + "0" * 400
    stock.write_text(BAD_STOCK.split("facts:\n")[0] + "facts:\n  earnings_growth_high_pct: {" + field + ": " + huge
                     + ", as_of: 2026-01-19, source: seed-report}\n", encoding="utf-8")
    base = load_facts(bad_universe, partial=True)
    what = "value" if field == "value" else "has a bound that"
    assert _rendered(base.skipped) == [
        f"facts/stocks/600001.yaml:6:29 fact-type: 'stock.earnings_growth_high_pct' {what} -1e+308 or more is "
        "beyond the largest number verdict accepts (1e+15). | The catalog declares it as number."]


def test_the_fast_path_mirrors_every_rule_of_the_model() -> None:
    # checked_fact repeats FactValue's rules by hand: a new field, type, default, setting or validator of the
    # model must be mirrored there (then update this list), or the fast path would build what it refuses.
    decorators = FactValue.__pydantic_decorators__
    assert set(decorators.model_validators) == {"_value_or_bounds"}
    assert not (decorators.validators or decorators.field_validators or decorators.root_validators)
    assert FactValue.model_config == {"extra": "forbid"}
    assert {k: (str(f.annotation), f.metadata, repr(f.default)) for k, f in FactValue.model_fields.items()} == {
        "value": ("bool | int | float | str | datetime.date | None", [], "None"),
        "gt": ("int | float | None", [], "None"), "gte": ("int | float | None", [], "None"),
        "lt": ("int | float | None", [], "None"), "lte": ("int | float | None", [], "None"),
        "as_of": ("<class 'datetime.date'>", [], "PydanticUndefined"),
        "known_at": ("datetime.date | None", [], "None"),
        "source": ("<class 'str'>", [], "PydanticUndefined"),
        "unit": ("<class 'str'>", [], "''"), "note": ("<class 'str'>", [], "''"), "basis": ("<class 'str'>", [], "''"),
    }
