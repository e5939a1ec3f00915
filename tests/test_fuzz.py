"""Robustness: generated and mutated input never ends in an unhandled exception.

Every failure must be a VerdictError whose problems carry a file and line. The default run is
small enough for CI; `pytest -m slow` runs at least 10,000 examples of each.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from conftest import FACTS, RULES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import expr
from engine.compile import compile_rules
from engine.errors import VerdictError
from engine.lint import lint
from engine.load import load_facts, load_rules_partial

CATALOG = load_facts(FACTS).catalog
SOURCE = (RULES / "valuation.yaml").read_text(encoding="utf-8")
YAML_CHARS = [*list(":-{}[],'\"#&*!|>%@` \n\t"), "stock.", "signal.", " and ", " not ", "when: ", "  - id: x.y\n"]


@st.composite
def mutated(draw: st.DrawFn) -> str:
    text = SOURCE
    for _ in range(draw(st.integers(1, 4))):
        pos = draw(st.integers(0, len(text)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = draw(st.sampled_from(YAML_CHARS) | st.text(max_size=3))
        if op == "insert":
            text = text[:pos] + piece + text[pos:]
        elif op == "delete":
            text = text[:pos] + text[pos + draw(st.integers(1, 12)):]
        else:
            text = text[:pos] + piece + text[pos + len(piece):]
    return text


def check_pack_text(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "rules"
        root.mkdir()
        shutil.copy(RULES / "policy.yaml", root / "policy.yaml")
        (root / "valuation.yaml").write_text(text, encoding="utf-8")
        book, problems = load_rules_partial(root, CATALOG)
        for p in problems:
            assert p.loc.file and p.message, p
        if book is None:
            return
        lint(book)
        try:
            compile_rules(book, CATALOG)
        except VerdictError as e:
            assert all(p.loc.file and p.loc.line for p in e.problems)


FAST = int(os.environ.get("VERDICT_FUZZ_EXAMPLES", "150"))


@settings(max_examples=FAST, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_packs_fail_cleanly(text: str) -> None:
    check_pack_text(text)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(mutated())
def test_mutated_packs_fail_cleanly_slow(text: str) -> None:
    check_pack_text(text)


ENV = expr.TypeEnv(CATALOG, {"overbought", "sector_tailwind"})
tokens = st.sampled_from(["stock.price", "stock.pe_ttm", "stock.name", "sector.supply_gap_2030_t", "signal.overbought",
                          "signal.overbought.score", "1", "0.5", "-2", "'x'", "true", "and", "or", "not", "(", ")",
                          ">", ">=", "<", "==", "!=", "+", "-", "*", "/", "abs(", "min(", ",", "in", "[", "]", "."])


@settings(max_examples=FAST * 4, deadline=None)
@given(st.lists(tokens, max_size=14).map(" ".join))
def test_generated_expressions_fail_cleanly(text: str) -> None:
    try:
        node = expr.check_condition(text, ENV)
        expr.to_dnf(node)
    except expr.ExprError as e:
        assert e.code and e.message and e.pos.line >= 1 and e.pos.col >= 0


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None)
@given(st.lists(tokens, max_size=20).map(" ".join))
def test_generated_expressions_fail_cleanly_slow(text: str) -> None:
    test_generated_expressions_fail_cleanly.hypothesis.inner_test(text)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ dates

SLOW_EACH = max(1, FAST // 6)  # fuzzers that load a copied workspace per example (~0.2 s each)


def _date_text() -> st.SearchStrategy[str]:
    num = st.integers(0, 9999).map(str)
    two = st.integers(0, 99).map(lambda n: f"{n:02d}")
    return st.one_of(
        st.tuples(num, two, two).map("-".join),  # 2026-02-30, 0000-13-00, ...
        st.dates().map(str),
        st.tuples(num, two, two).map("/".join), st.tuples(num, two, two).map("".join),
        st.text(alphabet="0123456789-:T .+Z", max_size=25))


def load_stock_with_date(text: str) -> None:
    """A date anywhere a stock file has one: a fact's as_of, a suspension, base.yaml."""
    with tempfile.TemporaryDirectory() as tmp:
        facts = Path(tmp) / "facts"
        shutil.copytree(FACTS, facts)
        stock = facts / "stocks" / "300127.yaml"
        body = stock.read_text(encoding="utf-8")
        stock.write_text(body.replace("as_of: 2026-01-19", f"as_of: {text}", 1), encoding="utf-8")
        base = load_facts(facts, partial=True)
        for p in base.skipped:
            assert p.loc.file == "facts/stocks/300127.yaml" and p.loc.line >= 1 and p.message, p
        (facts / "base.yaml").write_text(f"as_of: {text}\n", encoding="utf-8")
        try:
            load_facts(facts, partial=True)
        except VerdictError as e:
            assert all(p.loc.file and p.message for p in e.problems)
    from engine.cli import _date_option
    from engine.errors import LookupFailure

    try:
        _date_option("--as-of", text)
    except LookupFailure as e:
        assert "is not a date" in e.render()


@settings(max_examples=SLOW_EACH, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_date_text())
def test_dates_fail_cleanly(text: str) -> None:
    load_stock_with_date(text)


@pytest.mark.slow
@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_date_text())
def test_dates_fail_cleanly_slow(text: str) -> None:
    load_stock_with_date(text)


# ------------------------------------------------------------------ price CSV rows


def _cell() -> st.SearchStrategy[str]:
    return st.one_of(
        st.floats(allow_nan=True, allow_infinity=True).map(repr),
        st.floats(min_value=0.001, max_value=1e6).map(lambda x: f"{x:.2f}"),
        st.sampled_from(["nan", "-nan", "inf", "-inf", "1e999", "-0", "0", "", " ", "n/a", "1,5", "١٢", "0x10",
                         "1_000", "NaN", "Infinity", "\"52.3\"", "52.3.1", "1e308", "-51.07"]),
        st.text(max_size=6))


@st.composite
def csv_text(draw: st.DrawFn) -> str:
    header = draw(st.sampled_from(["date,open,close,high,low,volume,amount", "date,open,high,low,close,volume",
                                   "Date,Open,High,Low,Close,Volume", "date,open,close,high,low", ""]))
    rows = []
    for _ in range(draw(st.integers(0, 8))):
        date = draw(st.one_of(_date_text(), st.just("2022-01-05")))
        cells = draw(st.lists(_cell(), min_size=0, max_size=8))
        rows.append(",".join([date, *cells]))
    return "\n".join([header, *rows]) + draw(st.sampled_from(["", "\n", "\r\n"]))


def parse_price_text(text: str) -> None:
    import math

    from engine.errors import Problem
    from engine.prices import parse_rows

    problems: list[Problem] = []
    rows = parse_rows(text, "prices.csv", problems)
    for p in problems:
        assert p.loc.file == "prices.csv" and p.loc.line >= 1 and p.message
    for _, bar in rows:  # every accepted bar is sane
        values = (bar.open, bar.high, bar.low, bar.close, bar.volume)
        assert all(math.isfinite(v) for v in values) and bar.volume >= 0
        assert 0 < bar.low <= min(bar.open, bar.close) <= max(bar.open, bar.close) <= bar.high


@settings(max_examples=FAST * 2, deadline=None)
@given(csv_text())
def test_price_rows_fail_cleanly(text: str) -> None:
    parse_price_text(text)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(csv_text())
def test_price_rows_fail_cleanly_slow(text: str) -> None:
    parse_price_text(text)


# ------------------------------------------------------------------ template specs

SPEC_CHARS = [*"<>=^+- z#0123456789,_.eEfFgGn%dxXobcs{}!:", "999999999999", ".99", "{stock.price}"]


def render_spec(spec: str) -> None:
    from engine import limits

    text = "PE {stock.pe_ttm:" + spec + "} J {stock.kdj_j:" + spec + "} P {stock.price}"
    try:
        parts = expr.parse_template(text)
        for part in parts:
            if isinstance(part, expr.Placeholder):
                expr.type_of(part.node, ENV)
    except expr.ExprError as e:
        assert e.code and e.message
        return
    from engine.model import FactValue

    env = expr.EvalEnv({"stock.pe_ttm": FactValue.model_validate({"value": 86.26, "as_of": "2026-01-19",
                                                                  "source": "x"}),
                        "stock.kdj_j": FactValue.model_validate({"gt": 80, "as_of": "2026-01-19", "source": "x"})},
                       {})
    out = expr.render_template(parts, env)
    assert len(out) < 3 * (limits.MAX_FORMAT_WIDTH + limits.MAX_FORMAT_PRECISION + 40)


@settings(max_examples=FAST * 2, deadline=None)
@given(st.lists(st.sampled_from(SPEC_CHARS), max_size=8).map("".join))
def test_template_specs_fail_cleanly(spec: str) -> None:
    render_spec(spec)


@pytest.mark.slow
@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.sampled_from(SPEC_CHARS), max_size=12).map("".join))
def test_template_specs_fail_cleanly_slow(spec: str) -> None:
    render_spec(spec)


# ------------------------------------------------------------------ deep and long expressions


@st.composite
def nested(draw: st.DrawFn) -> str:
    """An expression nested up to well past the limit, and sometimes longer than it allows."""
    text = draw(st.sampled_from(["stock.pe_ttm", "stock.price", "1", "signal.overbought.score"]))
    for _ in range(draw(st.integers(0, 120))):
        wrap = draw(st.sampled_from(["not", "neg", "abs", "paren", "plus", "times", "min", "cmp"]))
        if wrap == "neg":
            text = f"-{text}"
        elif wrap == "abs":
            text = f"abs({text})"
        elif wrap == "paren":
            text = f"({text})"
        elif wrap == "plus":
            text = f"{text} + 0"
        elif wrap == "times":
            text = f"2 * ({text})"
        elif wrap == "min":
            text = f"min({text}, stock.price)"
        elif wrap == "cmp":
            text = f"({text} > 1)"
        else:
            text = f"not ({text})"
    return text + draw(st.sampled_from(["", " > 40", " and stock.price > 1"])) + " or stock.price > 0" * draw(
        st.sampled_from([0, 1, 700]))


def check_deep(text: str) -> None:
    """Refused with an ExprError, or accepted and then usable by every stage without a RecursionError."""
    from engine import limits

    try:
        node = expr.check_condition(text, ENV)
    except expr.ExprError as e:
        assert e.code and e.message and e.pos.line >= 1
        return
    assert len(text) <= limits.MAX_EXPR_CHARS
    expr.unparse(node)
    try:
        expr.to_dnf(node)
    except expr.ExprError as e:
        assert e.code == "too-complex"
    from engine.model import FactValue

    facts = {p: FactValue.model_validate({"value": 42.5, "as_of": "2026-01-19", "source": "x"})
             for p in expr.fact_paths(node)}
    expr.truth(node, expr.EvalEnv(facts, {"overbought": [1.0]}), [])
    check_pack_text(SOURCE.replace("when: stock.pe_ttm < 40", "when: " + text.replace("\n", " "), 1))


@settings(max_examples=FAST, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nested())
def test_deep_and_long_expressions_fail_cleanly(text: str) -> None:
    check_deep(text)


@pytest.mark.slow
@settings(max_examples=2_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(nested())
def test_deep_and_long_expressions_fail_cleanly_slow(text: str) -> None:
    check_deep(text)


# ------------------------------------------------------------------ file permissions and kinds


FILES = ["facts/stocks/600111.yaml", "facts/stocks/300127.yaml", "facts/prices/tushare_qfq_2022_2025/600111.csv",
         "facts/prices/gunark_tushare_qfq_2025H2_2026/300127.csv", "facts/catalog.yaml", "facts/sources.yaml",
         "facts/sectors/rare_earth_pm.yaml", "facts/base.yaml", "rules/valuation.yaml", "rules/policy.yaml"]
DAMAGE = ["chmod000", "chmod200", "loop", "dangling", "folder", "empty", "binary"]


@pytest.fixture()
def permissions_bind(monkeypatch: pytest.MonkeyPatch) -> None:
    """As root no mode bit stops a read: make mode bits bind as they do for any other user."""
    if os.geteuid() != 0:
        return
    import stat

    real_open = Path.open

    def open_(self: Path, mode: str = "r", *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        if "r" in mode and not os.stat(self).st_mode & stat.S_IRUSR:
            raise PermissionError(13, "Permission denied", str(self))
        return real_open(self, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "open", open_)


def load_damaged(damage: list[tuple[str, str]]) -> None:
    from engine.pipeline import Workspace

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(FACTS, root / "facts")
        shutil.copytree(RULES, root / "rules")
        for name, how in damage:
            path = root / name
            if path.is_symlink() or not path.is_file():  # damaged already: the first damage stands
                continue
            if how.startswith("chmod"):
                path.chmod(int(how[5:], 8))
            else:
                path.unlink()
                if how == "loop":
                    path.symlink_to(path.name)
                elif how == "dangling":
                    path.symlink_to("nowhere.yaml")
                elif how == "folder":
                    path.mkdir()
                elif how == "empty":
                    path.write_bytes(b"")
                else:
                    path.write_bytes(bytes(range(256)) * 4)
        try:
            ws = Workspace.open(root / "rules", root / "facts", partial=True, cache=None)
        except VerdictError as e:
            assert e.problems and all(p.loc.file and p.message for p in e.problems)
            return
        finally:
            for path in root.rglob("*"):
                if not path.is_symlink():
                    path.chmod(0o755 if path.is_dir() else 0o644)
        damaged = {name.removeprefix("facts/") for name, _ in damage}
        for symbol in ws.symbols():  # whatever loaded evaluates; a damaged file only left its symbol out
            ws.evaluate(symbol)
        for p in ws.facts.skipped:
            assert p.loc.file and p.message
        assert all(f"stocks/{s.split('.')[0]}.yaml" not in damaged for s in ws.symbols())


@settings(max_examples=SLOW_EACH, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                          HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(FILES), st.sampled_from(DAMAGE)), min_size=1, max_size=3))
def test_unreadable_and_odd_files_fail_cleanly(permissions_bind: None, damage: list[tuple[str, str]]) -> None:
    load_damaged(damage)


@pytest.mark.slow
@settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(st.tuples(st.sampled_from(FILES), st.sampled_from(DAMAGE)), min_size=1, max_size=4))
def test_unreadable_and_odd_files_fail_cleanly_slow(permissions_bind: None, damage: list[tuple[str, str]]) -> None:
    load_damaged(damage)
