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
