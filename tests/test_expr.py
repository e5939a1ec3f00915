"""The expression language: parsing, type errors with positions, three-valued evaluation, DNF."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import expr
from engine.model import Catalog, FactValue

CATALOG = Catalog.model_validate({"namespaces": {
    "stock": {
        "price": {"type": "number", "label": "Price", "family": "prices"},
        "pe_ttm": {"type": "number", "label": "PE", "family": "fundamentals"},
        "kdj_j": {"type": "number", "label": "J", "family": "technicals", "bounds": True},
        "name": {"type": "text", "label": "Name", "family": "reference"},
        "is_st": {"type": "bool", "label": "ST", "family": "reference"},
    },
    "sector": {"gap": {"type": "number", "label": "Gap", "family": "sector"}},
}})
ENV = expr.TypeEnv(CATALOG, {"overbought", "tailwind"})


def check(text: str) -> expr.Node:
    return expr.check_condition(text, ENV)


def fv(**kw) -> FactValue:  # type: ignore[no-untyped-def]
    return FactValue.model_validate({"as_of": "2026-01-19", "source": "s", **kw})


@pytest.mark.parametrize(("text", "code", "col"), [
    ("stock.pe_tmm > 3", "unknown-fact", 0),
    ("stocks.price > 3", "unknown-fact", 0),
    ("stock.name > 3", "type", 0),
    ("stock.price > 'x'", "type", 14),
    ("stock.price == true", "type", 0),
    ("stock.price > 1 and 3", "type", 20),
    ("stock.price > > 3", "syntax", 14),
    ("signal.overbougth", "unknown-signal", 0),
    ("signal.overbought.value", "unknown-name", 0),
    ("price > 3", "unknown-name", 0),
    ("__import__('os').system('x')", "unknown-function", 0),
    ("stock.price.real > 1", "unknown-name", 0),
    ("[x for x in y]", "unsupported", 0),
    ("stock.price + 1", "type", 0),
    ("true", "constant", 0),
    ("lambda: 1", "unsupported", 0),
])
def test_errors_carry_code_and_column(text: str, code: str, col: int) -> None:
    with pytest.raises(expr.ExprError) as err:
        check(text)
    assert err.value.code == code
    assert err.value.pos.col == col


def test_did_you_mean_for_fact_and_signal() -> None:
    with pytest.raises(expr.ExprError, match="unknown fact path") as err:
        check("stock.pe_tmm > 3")
    assert "stock.pe_ttm" in err.value.hint
    with pytest.raises(expr.ExprError) as err2:
        check("signal.overbougth")
    assert "overbought" in err2.value.hint


def test_evaluation_is_three_valued_and_respects_bounds() -> None:
    env = expr.EvalEnv({"stock.price": fv(value=51.07), "stock.kdj_j": fv(gt=80)}, {"overbought": [-1]})
    assert expr.truth(check("stock.kdj_j > 80"), env) is True
    assert expr.truth(check("stock.kdj_j >= 80"), env) is True
    assert expr.truth(check("stock.kdj_j > 90"), env) is None
    assert expr.truth(check("stock.kdj_j < 80"), env) is False
    assert expr.truth(check("stock.kdj_j <= 80"), env) is False
    assert expr.truth(check("stock.pe_ttm > 3"), env) is None
    assert expr.truth(check("stock.pe_ttm > 3 or stock.price > 50"), env) is True
    assert expr.truth(check("stock.pe_ttm > 3 and stock.price > 60"), env) is False
    assert expr.truth(check("signal.overbought and not signal.tailwind"), env) is True
    assert expr.truth(check("signal.overbought.score < 0"), env) is True
    assert expr.truth(check("abs(stock.price - 50) < 2"), env) is True
    assert expr.truth(check("stock.name in ['a', 'b']"), expr.EvalEnv({"stock.name": fv(value="b")}, {})) is True


def test_describe_states_values_threshold_and_margin() -> None:
    env = expr.EvalEnv({"stock.pe_ttm": fv(value=86.26), "stock.price": fv(value=40.1)}, {})
    seen: list[expr.CmpResult] = []
    expr.truth(check("stock.pe_ttm > 1.5 * stock.price"), env, seen)
    assert expr.describe_cmp(seen[0]) == "stock.pe_ttm 86.26 > 1.5 * stock.price = 60.15 (holds by 43.4%)"


def test_dnf_pushes_negation_to_the_leaves() -> None:
    dnf = expr.to_dnf(check("not (stock.price > 3 and signal.overbought)"))
    assert len(dnf) == 2
    assert expr.unparse(dnf[0][0].node) == "stock.price <= 3"
    assert dnf[1][0].negated and isinstance(dnf[1][0].node.item, expr.SignalRef)
    abs_dnf = expr.to_dnf(check("abs(stock.price) > 2"))
    assert [[expr.unparse(lit.node) for lit in c] for c in abs_dnf] == [["stock.price > 2"], ["stock.price < -2"]]


def test_templates_render_values_bounds_and_missing() -> None:
    env = expr.EvalEnv({"stock.pe_ttm": fv(value=86.26), "stock.kdj_j": fv(gt=80)}, {})
    parts = expr.parse_template("PE {stock.pe_ttm:.1f}, J {stock.kdj_j}, P {stock.price}, {{literal}}")
    assert expr.render_template(parts, env) == "PE 86.3, J > 80, P [stock.price unknown], {literal}"


texts = st.text(alphabet=st.sampled_from(list("stock.pricesignal_overbought ()<>=!+-*/0123456789.andornot'\"[],:abs")),
                max_size=60)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(texts)
def test_parser_never_raises_anything_but_expr_error(text: str) -> None:
    try:
        node = check(text)
    except expr.ExprError as e:
        assert e.code and e.message
        return
    expr.to_dnf(node) if len(text) < 40 else None


@pytest.mark.slow
@settings(max_examples=10000, deadline=None)
@given(st.text(max_size=80))
def test_parser_fuzz_slow(text: str) -> None:
    with contextlib.suppress(expr.ExprError):
        check(text)


@pytest.mark.parametrize(("text", "code", "col", "fragment"), [
    ("stock.price > 2026-1-19", "date-literal", 14, "read as the arithmetic 2026 - 1 - 19 = 2006"),
    ("stock.price > 2026-01-19", "date-literal", 14, 'Write a date as date("2026-01-19")'),
    ('stock.price > date("2026-13-01")', "bad-date", 14, "'2026-13-01' is not a calendar date"),
    ('stock.price > date("19 Jan 2026")', "bad-date", 14, "YYYY-MM-DD"),
    ('stock.price < date("2026-01-19")', "type", 14, "compares number with date"),
    ('date("2026-01-19") + 1 > stock.price', "type", 0, "Dates can be compared, or subtracted"),
    ("age(stock.price + 1) > 3", "type", 0, "age() takes one fact path"),
    ("avg(volume, 20) > 3", "unknown-function", 0, "a function of derived facts: declare one"),
])
def test_dates_and_ages_are_typed(text: str, code: str, col: int, fragment: str) -> None:
    with pytest.raises(expr.ExprError) as err:
        check(text)
    assert (err.value.code, err.value.pos.col) == (code, col), err.value.message
    assert fragment in err.value.message + " " + err.value.hint


def test_ages_and_date_arithmetic_evaluate_against_the_evaluation_date() -> None:
    import datetime as dt

    env = expr.EvalEnv({"stock.pe_ttm": fv(value=30.0), "stock.price": fv(value=20.0)}, {}, dt.date(2026, 4, 19))
    assert expr.value_of(expr.parse("age(stock.pe_ttm)"), env) == 90.0
    assert expr.truth(check("age(stock.pe_ttm) > 89 and stock.pe_ttm / stock.price > 1.4"), env) is True
    assert expr.value_of(expr.parse('date("2026-03-01") - date("2026-01-30")'), env) == 30.0
    no_day = expr.EvalEnv(env.facts, {})
    assert expr.truth(check("age(stock.pe_ttm) > 89"), no_day) is None
    zero = expr.EvalEnv({"stock.pe_ttm": fv(value=30.0), "stock.price": fv(value=0)}, {})
    v = expr.value_of(expr.parse("stock.pe_ttm / stock.price"), zero)
    assert isinstance(v, expr.Missing) and v.paths == ["stock.pe_ttm / stock.price (division by zero)"]


def _iv(lo: float = float("-inf"), hi: float = float("inf"), lo_open: bool = False, hi_open: bool = False
        ) -> expr.Interval:
    return expr.Interval(lo, hi, lo_open, hi_open)


@pytest.mark.parametrize(("a", "b", "want"), [(1.0, 2.0, (False, False, True, True, False, True)),
                                              (2.0, 2.0, (False, True, False, True, True, False)),
                                              (3.0, 2.0, (True, True, False, False, False, True))])
def test_compare_points_for_every_operator(a: float, b: float, want: tuple[bool, ...]) -> None:
    got = tuple(expr.compare(op, a, b) for op in (">", ">=", "<", "<=", "==", "!="))
    assert got == want
    assert all(isinstance(g, bool) for g in got)
    assert expr.compare("==", "a", "a") is True and expr.compare("!=", "a", "b") is True
    assert expr.compare("==", True, False) is False


GT80, GTE80, LT20, LTE20, BAND = _iv(80, lo_open=True), _iv(80), _iv(hi=20, hi_open=True), _iv(hi=20), _iv(10, 20)


@pytest.mark.parametrize(("bound", "op", "x", "want"), [
    (GT80, ">", 80, True), (GT80, ">=", 80, True), (GT80, ">", 79, True), (GT80, ">", 90, None),
    (GT80, "<", 80, False), (GT80, "<=", 80, False), (GT80, "<", 90, None), (GT80, "<=", 79, False),
    (GT80, "==", 70, False), (GT80, "==", 90, None), (GT80, "!=", 70, True), (GT80, "!=", 90, None),
    (GTE80, ">", 80, None), (GTE80, ">=", 80, True), (GTE80, ">", 79.9, True), (GTE80, "<", 80, False),
    (GTE80, "<=", 80, None), (GTE80, "<", 81, None), (GTE80, "==", 79, False), (GTE80, "!=", 79, True),
    (LT20, "<", 20, True), (LT20, "<=", 20, True), (LT20, "<", 21, True), (LT20, "<", 10, None),
    (LT20, ">", 20, False), (LT20, ">=", 20, False), (LT20, ">", 10, None), (LT20, ">=", 21, False),
    (LTE20, "<", 20, None), (LTE20, "<=", 20, True), (LTE20, ">", 20, False), (LTE20, ">=", 20, None),
    (LTE20, "==", 21, False), (LTE20, "!=", 21, True), (LTE20, "==", 19, None),
    (BAND, ">", 5, True), (BAND, ">=", 10, True), (BAND, ">", 10, None), (BAND, "<", 25, True),
    (BAND, "<=", 20, True), (BAND, "<", 20, None), (BAND, ">", 15, None), (BAND, "<", 15, None),
    (BAND, ">", 20, False), (BAND, "<", 10, False), (BAND, "==", 25, False), (BAND, "==", 5, False),
    (BAND, "!=", 25, True), (BAND, "!=", 15, None),
    # equality at the bound itself: possible for a closed bound, impossible for an open one
    (GTE80, "==", 80, None), (GTE80, "!=", 80, None), (LTE20, "==", 20, None), (LTE20, "!=", 20, None),
    (GT80, "==", 80, False), (GT80, "!=", 80, True), (LT20, "==", 20, False), (LT20, "!=", 20, True),
    (BAND, "==", 10, None), (BAND, "==", 20, None),
])
def test_compare_bounds_is_three_valued_at_every_edge(bound: expr.Interval, op: str, x: float,
                                                      want: bool | None) -> None:
    assert expr.compare(op, bound, float(x)) is want
    # the same comparison written the other way round: x FLIP(op) bound
    assert expr.compare(expr.FLIP[op], float(x), bound) is want


def test_compare_with_a_missing_side_or_two_bounds_is_undecided() -> None:
    missing = expr.Missing(["stock.pe_ttm"])
    for op in (">", ">=", "<", "<=", "==", "!="):
        assert expr.compare(op, missing, 1.0) is None and expr.compare(op, 1.0, missing) is None
        assert expr.compare(op, GT80, LT20) is None


def test_margins_are_relative_signed_and_only_for_ordered_numbers() -> None:
    assert expr.margin_pct(">", 86.26, 60.15) == pytest.approx(43.41, abs=0.01)
    assert expr.margin_pct(">=", 50.0, 60.0) == pytest.approx(-16.67, abs=0.01)  # fails by 16.67%
    assert expr.margin_pct("<", 50.0, 60.0) == pytest.approx(16.67, abs=0.01)  # holds: positive
    assert expr.margin_pct("<=", 70.0, -60.0) == pytest.approx(-216.67, abs=0.01)  # relative to |b|
    assert expr.margin_pct(">", 1.0, 0.0) is None  # no scale to be relative to
    for op in ("==", "!="):
        assert expr.margin_pct(op, 5.0, 4.0) is None
    assert expr.margin_pct(">", 1.0, GT80) is None and expr.margin_pct(">", GT80, 1.0) is None
    assert expr.margin_pct(">", 1.0, expr.Missing(["x"])) is None and expr.margin_pct(">", True, 1.0) is None
    assert expr.margin_pct(">", 3.0, 2.0) == 50.0 and expr.margin_pct(">", 3.0, 2.0123) == 49.08  # 49.0831


def test_describe_shows_constants_bounds_equality_and_undecided_sides() -> None:
    env = expr.EvalEnv({"stock.price": fv(value=51.07), "stock.kdj_j": fv(gt=80), "stock.pe_ttm": fv(value=40)}, {})

    def described(text: str) -> list[str]:
        seen: list[expr.CmpResult] = []
        expr.truth(check(text), env, seen)
        return [expr.describe_cmp(r) for r in seen]

    assert described("stock.price > 50") == ["stock.price 51.07 > 50 (holds by 2.1%)"]
    assert described("stock.kdj_j > 70") == ["stock.kdj_j (> 80) > 70 (holds)"]
    assert described("stock.kdj_j > 90") == ["stock.kdj_j (> 80) > 90 (undecided)"]
    assert described("stock.pe_ttm == 40") == ["stock.pe_ttm 40 == 40 (holds)"]
    assert described("stock.pe_ttm != 40") == ["stock.pe_ttm 40 != 40 (fails)"]
    assert described("stock.price < 2 * stock.pe_ttm") == ["stock.price 51.07 < 2 * stock.pe_ttm = 80 (holds by 36.2%)"]
