"""`when` and value expressions: parse (stdlib ast, eval mode, never evaluated by Python), type-check
against the fact catalog, and evaluate for explanations (values, thresholds, margins).

Matching is durable_rules' job (compile.py turns these trees into its rulesets); the evaluator here
only computes what a person reads: the numbers each comparison saw and by how much it held or
missed. rete.py cross-checks the two, so a silent durable_rules trap cannot pass unnoticed.
"""

from __future__ import annotations

import ast
import datetime as dt
import math
import re
import string
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import limits
from .errors import Location, Problem, did_you_mean
from .model import Catalog, FactValue

# ------------------------------------------------------------------------------------ tree

CMP_OPS: dict[type[ast.cmpop], str] = {
    ast.Gt: ">", ast.GtE: ">=", ast.Lt: "<", ast.LtE: "<=", ast.Eq: "==", ast.NotEq: "!="}
FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "==": "==", "!=": "!="}
NEGATE = {">": "<=", ">=": "<", "<": ">=", "<=": ">", "==": "!=", "!=": "=="}
ARITH_OPS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
FUNCTIONS = {"abs": 1, "min": -2, "max": -2, "round": -1,  # -n: at least n args; -1: 1 or 2
             "age": 1, "days_since": 1}
# Functions of derived-fact formulas only (facts/catalog.yaml `formula:`): named here for the hint a rule
# gets when it calls one; engine/series.py and engine/formulas.py define them.
FORMULA_ONLY = ("ma", "avg", "ema", "sma", "std", "stdp", "highest", "lowest", "highest_days", "lowest_days",
                "ret", "ref", "volatility", "cross", "macd_dif", "macd_dea", "macd_bar", "kdj_k", "kdj_d", "kdj_j",
                "rsi", "boll_mid", "boll_upper", "boll_lower", "percentile", "rank")
_DATE_LIKE = re.compile(r"(?<![\w.])(\d{4})-(\d{1,2})-(\d{1,2})(?![\w.])")


@dataclass(frozen=True)
class Pos:
    line: int  # 1-based line within the expression text
    col: int  # 0-based column within that line


@dataclass(frozen=True)
class Node:
    pos: Pos = field(compare=False, repr=False)


@dataclass(frozen=True)
class Const(Node):
    value: Any


@dataclass(frozen=True)
class FactRef(Node):
    path: str

    @property
    def ns(self) -> str:
        return self.path.partition(".")[0]

    @property
    def name(self) -> str:
        return self.path.partition(".")[2]


@dataclass(frozen=True)
class Word(Node):
    """A bare name, allowed only in derived-fact formulas: a price series (close, volume, ...) or a scope
    of a cross-sectional function (sector, universe)."""

    name: str


@dataclass(frozen=True)
class SignalRef(Node):
    name: str
    attr: str | None = None  # None: presence (bool); "score": the summed score (number)


@dataclass(frozen=True)
class Arith(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class Call(Node):
    fn: str
    args: tuple[Node, ...]


@dataclass(frozen=True)
class Cmp(Node):
    op: str
    left: Node
    right: Node


@dataclass(frozen=True)
class BoolOp(Node):
    op: str  # "and" | "or"
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not(Node):
    item: Node


@dataclass(frozen=True)
class Truth(Node):
    """A bool fact or a signal used directly as a condition."""

    item: Node


class ExprError(Exception):
    def __init__(self, pos: Pos, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.pos, self.code, self.message, self.hint = pos, code, message, hint


# ------------------------------------------------------------------------------------ parse


def _pos(node: ast.AST) -> Pos:
    return Pos(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))


def _dotted(node: ast.AST) -> list[str] | None:
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return None


@dataclass(frozen=True)
class Grammar:
    """What a parse accepts beyond `when` expressions: derived-fact formulas also take bare names
    (price series, scopes) and the functions of engine/series.py and engine/formulas.py."""

    words: bool = False
    functions: frozenset[str] = frozenset()


WHEN = Grammar()


def parse(text: str, grammar: Grammar = WHEN) -> Node:
    """Parse expression text into our tree. Raises ExprError with a position; never evaluates."""
    if not isinstance(text, str) or not text.strip():
        raise ExprError(Pos(1, 0), "empty-expression", "the expression is empty.",
                        "Write a condition such as `stock.pe_ttm > 40`.")
    if "\x00" in text:
        raise ExprError(Pos(1, text.index("\x00")), "syntax", "the expression contains a NUL character.")
    if len(text) > limits.MAX_EXPR_CHARS:
        raise ExprError(Pos(1, 0), "too-long", f"the expression is {len(text):,} characters long; at most "
                        f"{limits.MAX_EXPR_CHARS:,} are allowed.", "Split it into several rules, or emit an "
                        "intermediate signal that another rule reads.")
    source = text.strip()
    lead = len(text) - len(text.lstrip())
    try:
        with warnings.catch_warnings():  # e.g. "invalid decimal literal" for `1and`: not for the user's terminal
            warnings.simplefilter("ignore")
            tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        line = exc.lineno or 1
        col = max((exc.offset or 1) - 1, 0) + (lead if line == 1 else 0)
        looks = _DATE_LIKE.search(text)
        if looks:  # `2026-01-19`: leading zeros are a syntax error in Python; say what was meant
            raise _date_literal_error(text, looks) from None
        raise ExprError(Pos(line, col), "syntax", f"invalid expression syntax ({exc.msg}).",
                        "Use comparisons (> >= < <= == !=), and/or/not, + - * /, numbers, "
                        "quoted text and fact paths such as stock.price.") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise ExprError(Pos(1, 0), "syntax", f"invalid expression ({type(exc).__name__}).") from None
    _check_depth(tree.body, lead)
    try:
        node = _convert(tree.body, grammar)
    except RecursionError:  # pragma: no cover - _check_depth keeps the tree far below the stack's limit
        raise ExprError(Pos(1, 0), "too-deep", "the expression is nested too deeply.") from None
    if lead:
        node = _shift(node, lead)
    return node


_LEAVES = (ast.Name, ast.Attribute, ast.Constant)


def _check_depth(tree: ast.AST, lead: int) -> None:
    """Refuse nesting beyond limits.MAX_EXPR_DEPTH before anything recurses over the tree (iteratively, so
    a 600-deep `not not ...` is an error here, never a RecursionError in a later stage)."""
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limits.MAX_EXPR_DEPTH:
            p = _pos(node)
            raise ExprError(Pos(p.line, p.col + (lead if p.line == 1 else 0)), "too-deep",
                            f"the expression nests operators, calls and parentheses more than "
                            f"{limits.MAX_EXPR_DEPTH} levels deep.",
                            "Split it into several rules, or emit an intermediate signal that another rule reads.")
        if isinstance(node, _LEAVES):
            continue
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node)
                     if isinstance(child, ast.expr) and not isinstance(child, _LEAVES))


def _date_literal_error(text: str, m: re.Match[str]) -> ExprError:
    line = text.count("\n", 0, m.start()) + 1
    col = m.start() - (text.rfind("\n", 0, m.start()) + 1)
    y, mo, d = (int(g) for g in m.groups())
    return ExprError(Pos(line, col), "date-literal",
                     f"`{m.group(0)}` is not a date here: an expression reads it as the subtraction {y} - {mo} - {d}.",
                     f'Write a date as date("{y:04d}-{mo:02d}-{d:02d}").')


def _looks_like_date(node: ast.BinOp) -> bool:
    """`2026-1-19`: year - month - day written as integer arithmetic."""
    left = node.left
    parts = [left.left, left.right, node.right] if isinstance(left, ast.BinOp) and isinstance(left.op, ast.Sub) \
        else []
    if len(parts) != 3 or not all(isinstance(x, ast.Constant) and type(x.value) is int for x in parts):
        return False
    y, m, d = (x.value for x in parts)  # type: ignore[attr-defined]
    return bool(1000 <= y <= 9999 and 1 <= m <= 12 and 1 <= d <= 31)


def _shift(node: Node, cols: int) -> Node:
    # Columns of the first line move by the stripped indentation; cheap to rebuild.
    import dataclasses

    def fix(n: Any) -> Any:
        if isinstance(n, Node):
            changes: dict[str, Any] = {}
            for f in dataclasses.fields(n):
                if f.name == "pos":
                    continue
                changes[f.name] = fix(getattr(n, f.name))
            p = n.pos
            return dataclasses.replace(n, pos=Pos(p.line, p.col + cols if p.line == 1 else p.col), **changes)
        if isinstance(n, tuple):
            return tuple(fix(x) for x in n)
        return n

    shifted: Node = fix(node)
    return shifted


def _convert(node: ast.AST, g: Grammar) -> Node:
    p = _pos(node)
    if isinstance(node, ast.BoolOp):
        op = "and" if isinstance(node.op, ast.And) else "or"
        return BoolOp(p, op, tuple(_convert(v, g) for v in node.values))
    if isinstance(node, ast.UnaryOp):
        if isinstance(node.op, ast.Not):
            return Not(p, _convert(node.operand, g))
        if isinstance(node.op, ast.USub):
            inner = _convert(node.operand, g)
            if isinstance(inner, Const) and isinstance(inner.value, (int, float)) and not isinstance(
                    inner.value, bool):
                return Const(p, -inner.value)
            return Neg(p, inner)
        if isinstance(node.op, ast.UAdd):
            return _convert(node.operand, g)
        raise ExprError(p, "unsupported", "the operator `~` is not allowed in rule expressions.")
    if isinstance(node, ast.Compare):
        items: list[Node] = []
        left = _convert(node.left, g)
        for cop, comp in zip(node.ops, node.comparators, strict=True):
            right_ast = comp
            if isinstance(cop, (ast.In, ast.NotIn)):
                if not isinstance(right_ast, (ast.List, ast.Tuple)) or not right_ast.elts:
                    raise ExprError(_pos(right_ast), "unsupported",
                                    "`in` needs a non-empty list of values, e.g. stock.board in ['main', 'star'].")
                options = [_convert(e, g) for e in right_ast.elts]
                eqs = tuple(Cmp(p, "==", left, o) for o in options)
                test: Node = eqs[0] if len(eqs) == 1 else BoolOp(p, "or", eqs)
                items.append(Not(p, test) if isinstance(cop, ast.NotIn) else test)
                continue
            sym = CMP_OPS.get(type(cop))
            if sym is None:
                raise ExprError(p, "unsupported", f"the comparison `{type(cop).__name__}` is not allowed.",
                                "Use > >= < <= == != or `in [...]`.")
            right = _convert(right_ast, g)
            items.append(Cmp(p, sym, left, right))
            left = right
        return items[0] if len(items) == 1 else BoolOp(p, "and", tuple(items))
    if isinstance(node, ast.BinOp):
        if isinstance(node.op, ast.Sub) and _looks_like_date(node):
            y, m, d = node.left.left.value, node.left.right.value, node.right.value  # type: ignore[attr-defined]
            raise ExprError(p, "date-literal",
                            f"`{y}-{m}-{d}` is not a date here: it is read as the arithmetic {y} - {m} - {d} = "
                            f"{y - m - d}.", f'Write a date as date("{y:04d}-{m:02d}-{d:02d}").')
        sym = ARITH_OPS.get(type(node.op))
        if sym is None:
            raise ExprError(p, "unsupported", f"the operator `{type(node.op).__name__}` is not allowed.",
                            "Only + - * / are supported.")
        return Arith(p, sym, _convert(node.left, g), _convert(node.right, g))
    if isinstance(node, ast.Constant):
        v = node.value
        if isinstance(v, (bool, str)):
            return Const(p, v)
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise ExprError(p, "bad-number", "numbers must be finite.")
            return Const(p, v)
        raise ExprError(p, "unsupported", f"the literal {v!r} is not allowed.",
                        "Use numbers, quoted text, true or false.")
    if isinstance(node, (ast.Attribute, ast.Name)):
        parts = _dotted(node)
        if parts is None:
            raise ExprError(p, "unsupported", "only dotted fact paths like stock.price can be read.")
        if len(parts) == 1:
            word = parts[0]
            if word in ("true", "True"):
                return Const(p, True)
            if word in ("false", "False"):
                return Const(p, False)
            if g.words:
                return Word(p, word)
            raise ExprError(p, "unknown-name", f"`{word}` is not a fact path.",
                            "Fact paths have a namespace: stock.NAME, sector.NAME, commodity.NAME or signal.NAME.")
        if parts[0] == "signal":
            if len(parts) == 2:
                return SignalRef(p, parts[1])
            if len(parts) == 3 and parts[2] == "score":
                return SignalRef(p, parts[1], "score")
            raise ExprError(p, "unknown-name", f"`{'.'.join(parts)}` is not a signal reference.",
                            "Write signal.NAME (is it present?) or signal.NAME.score (its summed score).")
        if len(parts) != 2:
            raise ExprError(p, "unknown-name", f"`{'.'.join(parts)}` is not a fact path.",
                            "Fact paths have exactly two parts, e.g. stock.pe_ttm.")
        return FactRef(p, ".".join(parts))
    if isinstance(node, ast.Call):
        fn = node.func.id if isinstance(node.func, ast.Name) else None
        if fn == "date":
            return _date_call(node, p)
        if fn not in FUNCTIONS and (fn is None or fn not in g.functions):
            known = sorted({*FUNCTIONS, "date", *g.functions})
            hint = did_you_mean(fn, known) if fn else ""
            if fn in FORMULA_ONLY:
                hint = (f"`{fn}` is a function of derived facts: declare one in facts/catalog.yaml, e.g. "
                        f"`my_fact: {{type: number, label: ..., family: technicals, formula: \"{fn}(...)\"}}`, "
                        "and compare stock.my_fact here.")
            raise ExprError(p, "unknown-function", f"the function `{ast.unparse(node.func)}` is not available.",
                            hint or "Available: abs(x), min(a, b, ...), max(a, b, ...), round(x, digits), "
                            'age(fact), days_since(date), date("YYYY-MM-DD").')
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise ExprError(p, "unsupported", "keyword and starred arguments are not allowed.")
        args = tuple(_convert(a, g) for a in node.args)
        if fn not in FUNCTIONS:  # a formula function: engine/formulas.py checks its arguments
            return Call(p, fn, args)
        want = FUNCTIONS[fn]
        ok = (len(args) == want) if want > 0 else (len(args) >= 2 if want == -2 else len(args) in (1, 2))
        if not ok:
            raise ExprError(p, "arity", f"`{fn}` got {len(args)} argument(s).")
        return Call(p, fn, args)
    kind = type(node).__name__
    raise ExprError(p, "unsupported", f"`{kind}` expressions are not allowed in rules.",
                    "Use comparisons, and/or/not, + - * /, abs/min/max/round, numbers and fact paths.")


def _date_call(node: ast.Call, p: Pos) -> Const:
    """`date("2020-01-01")` is a literal: checked and converted when parsed."""
    arg = node.args[0] if len(node.args) == 1 and not node.keywords else None
    text = arg.value if isinstance(arg, ast.Constant) and isinstance(arg.value, str) else None
    try:
        if text is None or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError
        return Const(p, dt.date.fromisoformat(text))
    except ValueError:
        shown = f" ({text!r} is not a calendar date)" if text and re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else ""
        raise ExprError(p, "bad-date", f"date() takes one quoted date written YYYY-MM-DD{shown}.",
                        'Example: stock.listing_date < date("2020-01-01").') from None


# ------------------------------------------------------------------------------------ types


@dataclass
class TypeEnv:
    catalog: Catalog
    signals: set[str]
    allow_signals: bool = True


def type_of(node: Node, env: TypeEnv) -> str:
    """Check `node` and return its type: number, bool or text. Raises ExprError on the first fault."""
    if isinstance(node, Const):
        return const_type(node.value)
    if isinstance(node, Word):
        raise ExprError(node.pos, "unknown-name", f"`{node.name}` is not a fact path.",
                        "Fact paths have a namespace: stock.NAME, sector.NAME, commodity.NAME or signal.NAME.")
    if isinstance(node, FactRef):
        spec = env.catalog.spec(node.path)
        if spec is None:
            ns = node.ns
            if ns not in env.catalog.namespaces:
                names = [*env.catalog.namespaces, "signal"]
                raise ExprError(node.pos, "unknown-fact", f"unknown namespace `{ns}` in `{node.path}`.",
                                did_you_mean(ns, names) or f"Namespaces: {', '.join(names)}.")
            fields = list(env.catalog.namespaces[ns])
            close = did_you_mean(node.name, fields, prefix=f"{ns}.") or did_you_mean(node.path, env.catalog.paths())
            raise ExprError(node.pos, "unknown-fact", f"unknown fact path `{node.path}`.",
                            close or "Add it to facts/catalog.yaml or fix the name.")
        return spec.type
    if isinstance(node, SignalRef):
        if not env.allow_signals:
            raise ExprError(node.pos, "signal-not-allowed", "signals cannot be read here; use facts.")
        if node.name not in env.signals:
            hint = did_you_mean(node.name, env.signals) or "No rule emits it: add a rule whose then has " \
                f"signal: {{name: {node.name}}} or fix the name."
            raise ExprError(node.pos, "unknown-signal", f"unknown signal `{node.name}`.", hint)
        return "number" if node.attr == "score" else "bool"
    if isinstance(node, Arith) and node.op == "-":
        lt, rt = type_of(node.left, env), type_of(node.right, env)
        if lt == rt == "date":
            return "number"  # days between two dates
    if isinstance(node, (Arith, Neg)):
        for sub in ((node.left, node.right) if isinstance(node, Arith) else (node.operand,)):
            t = type_of(sub, env)
            if t != "number":
                raise ExprError(sub.pos, "type", f"arithmetic needs numbers, but `{unparse(sub)}` is {t}.",
                                "Dates can be compared, or subtracted from each other (days); "
                                "age(stock.x) is the age in days of a fact." if t == "date" else "")
        return "number"
    if isinstance(node, Call):
        if node.fn == "age":
            if not (len(node.args) == 1 and isinstance(node.args[0], FactRef)):
                raise ExprError(node.pos, "type", "age() takes one fact path, e.g. age(stock.pe_ttm).",
                                "It is the number of days from the fact's as-of date to the evaluation date.")
            type_of(node.args[0], env)
            return "number"
        want = "date" if node.fn == "days_since" else "number"
        for sub in node.args:
            t = type_of(sub, env)
            if t != want:
                raise ExprError(sub.pos, "type", f"`{node.fn}` needs {want}s, but `{unparse(sub)}` is {t}.")
        if node.fn not in FUNCTIONS:
            raise ExprError(node.pos, "unknown-function", f"the function `{node.fn}` is not available here.")
        return "number"
    if isinstance(node, Cmp):
        lt, rt = type_of(node.left, env), type_of(node.right, env)
        if node.op in ("==", "!="):
            if lt != rt:
                raise ExprError(node.pos, "type", f"`{unparse(node)}` compares {lt} with {rt}.",
                                "Both sides of == and != must have the same type."
                                + (' Write dates as date("YYYY-MM-DD").' if "date" in (lt, rt) else ""))
            return "bool"
        if lt == rt == "date":
            return "bool"
        for side, t in ((node.left, lt), (node.right, rt)):
            if t != "number":
                if "date" in (lt, rt):
                    raise ExprError(side.pos, "type", f"`{node.op}` compares {lt} with {rt}.",
                                    'Compare dates with dates, written date("YYYY-MM-DD").')
                raise ExprError(side.pos, "type",
                                f"`{node.op}` needs numbers on both sides, but `{unparse(side)}` is {t}.",
                                "Compare text and true/false facts with == or != only.")
        return "bool"
    if isinstance(node, BoolOp):
        for sub in node.items:
            _expect_bool(sub, env, node.op)
        return "bool"
    if isinstance(node, Not):
        _expect_bool(node.item, env, "not")
        return "bool"
    if isinstance(node, Truth):
        return type_of(node.item, env)
    raise ExprError(node.pos, "internal", f"unknown node {node!r}")  # pragma: no cover


def const_type(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, str):
        return "text"
    if isinstance(v, dt.date):
        return "date"
    return "number"


def _expect_bool(sub: Node, env: TypeEnv, where: str) -> None:
    t = type_of(sub, env)
    if t != "bool":
        raise ExprError(sub.pos, "type", f"`{where}` needs conditions, but `{unparse(sub)}` is {t}.",
                        "Compare it, e.g. `stock.price > 10`.")


def as_condition(node: Node) -> Node:
    """Wrap bare bool facts and signals in Truth so every leaf of a condition is a test."""
    if isinstance(node, BoolOp):
        return BoolOp(node.pos, node.op, tuple(as_condition(i) for i in node.items))
    if isinstance(node, Not):
        return Not(node.pos, as_condition(node.item))
    if isinstance(node, (FactRef, SignalRef, Const)):
        return Truth(node.pos, node)
    return node


def check_condition(text: str, env: TypeEnv) -> Node:
    """Parse and type-check a `when` expression; the result is a condition tree."""
    node = as_condition(parse(text))
    t = type_of(node, env)
    if t != "bool":
        raise ExprError(node.pos, "type", f"a condition must be true or false, but this is {t}.",
                        "Compare it, e.g. `stock.price > 10`.")
    if isinstance(node, Truth) and isinstance(node.item, Const):
        raise ExprError(node.pos, "constant", "the condition is a constant; it does not depend on any fact.")
    return node


def check_value(text: str | int | float, env: TypeEnv) -> Node:
    """Parse and type-check a numeric value expression (entry and target bounds)."""
    if isinstance(text, bool):
        raise ExprError(Pos(1, 0), "type", "a price bound must be a number or an expression, not true/false.")
    if isinstance(text, (int, float)):
        if not math.isfinite(text):
            raise ExprError(Pos(1, 0), "bad-number", "numbers must be finite.")
        return Const(Pos(1, 0), text)
    node = parse(text)
    t = type_of(node, env)
    if t != "number":
        raise ExprError(node.pos, "type", f"this must be a number, but it is {t}.")
    return node


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in children(node):
        yield from walk(child)


def children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, (Arith, Cmp)):
        return (node.left, node.right)
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, BoolOp):
        return node.items
    if isinstance(node, (Not, Truth)):
        return (node.item,)
    return ()


def fact_paths(node: Node) -> list[str]:
    seen: dict[str, None] = {}
    for n in walk(node):
        if isinstance(n, FactRef):
            seen[n.path] = None
    return list(seen)


def signal_refs(node: Node) -> list[tuple[str, bool]]:
    """(signal, negated) for each signal read; negation counts through `not` only."""
    out: list[tuple[str, bool]] = []

    def go(n: Node, neg: bool) -> None:
        if isinstance(n, Not):
            go(n.item, not neg)
            return
        if isinstance(n, SignalRef):
            out.append((n.name, neg))
        for c in children(n):
            go(c, neg)

    go(node, False)
    return out


# ------------------------------------------------------------------------------------ text

_PREC = {"or": 1, "and": 2, "not": 3, "cmp": 4, "+": 5, "-": 5, "*": 6, "/": 6, "neg": 7}


def unparse(node: Node, parent: int = 0) -> str:
    def wrap(text: str, prec: int) -> str:
        return f"({text})" if prec < parent else text

    if isinstance(node, Const):
        v = node.value
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, str):
            return repr(v)
        if isinstance(v, dt.date):
            return f'date("{v.isoformat()}")'
        return fmt_num(v)
    if isinstance(node, FactRef):
        return node.path
    if isinstance(node, Word):
        return node.name
    if isinstance(node, SignalRef):
        return f"signal.{node.name}" + (f".{node.attr}" if node.attr else "")
    if isinstance(node, Arith):
        prec = _PREC[node.op]
        return wrap(f"{unparse(node.left, prec)} {node.op} {unparse(node.right, prec + 1)}", prec)
    if isinstance(node, Neg):
        return wrap(f"-{unparse(node.operand, _PREC['neg'])}", _PREC["neg"])
    if isinstance(node, Call):
        return f"{node.fn}({', '.join(unparse(a) for a in node.args)})"
    if isinstance(node, Cmp):
        prec = _PREC["cmp"]
        return wrap(f"{unparse(node.left, prec + 1)} {node.op} {unparse(node.right, prec + 1)}", prec)
    if isinstance(node, BoolOp):
        prec = _PREC[node.op]
        return wrap(f" {node.op} ".join(unparse(i, prec + 1) for i in node.items), prec)
    if isinstance(node, Not):
        return wrap(f"not {unparse(node.item, _PREC['not'])}", _PREC["not"])
    if isinstance(node, Truth):
        return unparse(node.item, parent)
    return "?"  # pragma: no cover


def fmt_num(v: float | int) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int) or (isinstance(v, float) and v.is_integer() and abs(v) < 1e15):
        return str(int(v))
    text = f"{v:.6g}"
    return text if "e" not in text else f"{v:.10f}".rstrip("0").rstrip(".")


# ------------------------------------------------------------------------------------ evaluate


@dataclass(frozen=True)
class Interval:
    """A number known only within bounds; `lo_open`: the lower bound itself is excluded."""

    lo: float = -math.inf
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    @staticmethod
    def of(fv: FactValue) -> Interval:
        lo, lo_open = (float(fv.gt), True) if fv.gt is not None else (
            (float(fv.gte), False) if fv.gte is not None else (-math.inf, False))
        hi, hi_open = (float(fv.lt), True) if fv.lt is not None else (
            (float(fv.lte), False) if fv.lte is not None else (math.inf, False))
        return Interval(lo, hi, lo_open, hi_open)

    def text(self, spec: str = "") -> str:
        def num(x: float) -> str:
            if spec:
                try:
                    return format(x, spec)
                except ValueError:
                    pass
            return fmt_num(x)

        parts = []
        if self.lo > -math.inf:
            parts.append(f"{'>' if self.lo_open else '>='} {num(self.lo)}")
        if self.hi < math.inf:
            parts.append(f"{'<' if self.hi_open else '<='} {num(self.hi)}")
        return " and ".join(parts) or "unknown"


class Missing:
    """The value of an expression that reads a fact the symbol does not have."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = paths

    def __repr__(self) -> str:
        return f"Missing({self.paths})"


Value = Any  # float | bool | str | Interval | Missing


@dataclass
class EvalEnv:
    facts: dict[str, FactValue]
    signals: dict[str, list[float]]
    day: dt.date | None = None  # the evaluation date: what age() and days_since() count to


@dataclass
class CmpResult:
    node: Cmp
    left: Value
    right: Value
    holds: bool | None


def promote_int(v: Any) -> Any:
    """Integers as floats (booleans kept), so a literal 3 and a fact 3.0 compare and print alike."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return float(v)
    return v


def value_of(node: Node, env: EvalEnv) -> Value:
    if isinstance(node, Const):
        return promote_int(node.value)
    if isinstance(node, FactRef):
        fv = env.facts.get(node.path)
        if fv is None:
            return Missing([node.path])
        return promote_int(fv.value) if fv.is_point else Interval.of(fv)
    if isinstance(node, SignalRef):
        scores = env.signals.get(node.name)
        if node.attr == "score":
            return float(sum(scores)) if scores else Missing([f"signal.{node.name}"])
        return bool(scores)
    if isinstance(node, Call) and node.fn == "age":
        path = unparse(node.args[0])
        fv = env.facts.get(path)
        if fv is None:
            return Missing([path])
        if env.day is None:
            return Missing([f"age({path}) (no evaluation date)"])
        return float((env.day - fv.as_of).days)
    if isinstance(node, (Arith, Neg, Call)):
        subs = [value_of(c, env) for c in children(node)]
        missing = [p for s in subs if isinstance(s, Missing) for p in s.paths]
        if missing:
            return Missing(missing)
        if any(isinstance(s, Interval) for s in subs):
            return Missing([f"{unparse(c)} (known only as {s.text()})" for c, s in zip(
                children(node), subs, strict=True) if isinstance(s, Interval)])
        return apply_arith(node, subs, env.day)
    raise ValueError(f"not a value: {unparse(node)}")


def apply_arith(node: Node, subs: list[Any], env_day: dt.date | None = None) -> Any:
    """The value of an arithmetic or date node over its operands' values (`subs`), shared by the point,
    series and formula evaluators so the three agree on every operator."""
    try:
        if isinstance(node, Neg):
            return -subs[0]
        if isinstance(node, Arith):
            a, b = subs
            if node.op == "+":
                return a + b
            if node.op == "-":
                return float((a - b).days) if isinstance(a, dt.date) else a - b
            if node.op == "*":
                return a * b
            if b == 0:
                return Missing([f"{unparse(node)} (division by zero)"])
            return a / b
        assert isinstance(node, Call)
        if node.fn == "days_since":
            if env_day is None:
                return Missing([f"{unparse(node)} (no evaluation date)"])
            return float((env_day - subs[0]).days)
        if node.fn == "abs":
            return abs(subs[0])
        if node.fn == "min":
            return min(subs)
        if node.fn == "max":
            return max(subs)
        digits = int(subs[1]) if len(subs) > 1 else 0
        return round(subs[0], digits)
    except (OverflowError, ValueError, TypeError):
        return Missing([f"{unparse(node)} (not computable)"])


def compare(op: str, a: Value, b: Value) -> bool | None:
    """Three-valued comparison: None when a bound leaves it undecided or a side is missing."""
    if isinstance(a, Missing) or isinstance(b, Missing):
        return None
    if isinstance(b, Interval) and not isinstance(a, Interval):
        return compare(FLIP[op], b, a)
    if isinstance(a, Interval):
        if isinstance(b, Interval):
            return None
        x = float(b)
        if op in (">", ">="):
            if a.lo > x or (a.lo == x and (a.lo_open or op == ">=")):
                return True
            if a.hi < x or (a.hi == x and (a.hi_open or op == ">")):
                return False
            return None
        if op in ("<", "<="):
            r = compare(FLIP[op], Interval(-a.hi, -a.lo, a.hi_open, a.lo_open), -x)
            return r
        outside = a.lo > x or a.hi < x or (a.lo == x and a.lo_open) or (a.hi == x and a.hi_open)
        if op == "==":
            return False if outside else None
        if op == "!=":
            return True if outside else None
    if op == "==":
        return bool(a == b)
    if op == "!=":
        return bool(a != b)
    if op == ">":
        return bool(a > b)
    if op == ">=":
        return bool(a >= b)
    if op == "<":
        return bool(a < b)
    return bool(a <= b)


def truth(node: Node, env: EvalEnv, seen: list[CmpResult] | None = None) -> bool | None:
    """Kleene three-valued truth of a condition; records every comparison it evaluates in `seen`."""
    if isinstance(node, BoolOp):
        results = [truth(i, env, seen) for i in node.items]
        if node.op == "and":
            if any(r is False for r in results):
                return False
            return None if any(r is None for r in results) else True
        if any(r is True for r in results):
            return True
        return None if any(r is None for r in results) else False
    if isinstance(node, Not):
        r = truth(node.item, env, seen)
        return None if r is None else not r
    if isinstance(node, Truth):
        v = value_of(node.item, env)
        if isinstance(v, Missing):
            return None
        return bool(v)
    if isinstance(node, Cmp):
        a, b = value_of(node.left, env), value_of(node.right, env)
        r = compare(node.op, a, b)
        if seen is not None:
            seen.append(CmpResult(node, a, b, r))
        return r
    raise ValueError(f"not a condition: {unparse(node)}")


def missing_paths(node: Node, env: EvalEnv) -> list[str]:
    """Fact paths a condition reads that the symbol lacks (signals are never 'missing')."""
    return [p for p in fact_paths(node) if p not in env.facts]


def margin_pct(op: str, a: Value, b: Value) -> float | None:
    """How far `a` is from `b` relative to |b|, signed so that positive means the test holds."""
    if not isinstance(a, float) or not isinstance(b, float) or isinstance(a, bool) or isinstance(b, bool):
        return None
    if b == 0 or op in ("==", "!="):
        return None
    diff = (a - b) / abs(b) * 100
    return round(diff if op in (">", ">=") else -diff, 2)


def show(v: Value) -> str:
    if isinstance(v, Missing):
        return "missing"
    if isinstance(v, Interval):
        return v.text()
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return fmt_num(round(v, 4))
    return str(v)


def describe_cmp(r: CmpResult) -> str:
    """'stock.pe_ttm 86.26 > 1.5 * stock.pe_hist_avg = 60.15 (holds by 43.4%)'."""
    node = r.node

    def side(n: Node, v: Value) -> str:
        if isinstance(n, Const):
            return show(v)
        if isinstance(n, FactRef):
            return f"{n.path} ({show(v)})" if isinstance(v, Interval) else f"{n.path} {show(v)}"
        return f"{unparse(n)} = {show(v)}"

    text = f"{side(node.left, r.left)} {node.op} {side(node.right, r.right)}"
    m = margin_pct(node.op, r.left, r.right)
    if r.holds is None:
        return text + " (undecided)"
    verdict = "holds" if r.holds else "fails"
    return text + (f" ({verdict} by {abs(m):.1f}%)" if m is not None else f" ({verdict})")


# ------------------------------------------------------------------------------------ DNF


@dataclass(frozen=True)
class Lit:
    """A leaf of a condition in disjunctive normal form."""

    node: Node  # Cmp, or Truth(FactRef|SignalRef)
    negated: bool = False  # only for signal tests: "no such signal"


MAX_DISJUNCTS = 16


def to_dnf(node: Node) -> list[list[Lit]]:
    """Disjunctive normal form with negation pushed to the leaves (comparisons flip their operator)."""
    out = _dnf(node, False)
    if len(out) > MAX_DISJUNCTS:
        raise ExprError(node.pos, "too-complex",
                        f"the condition expands to {len(out)} alternatives (at most {MAX_DISJUNCTS}).",
                        "Split it into several rules, or emit an intermediate signal.")
    return out


def _dnf(node: Node, neg: bool) -> list[list[Lit]]:
    if isinstance(node, Not):
        return _dnf(node.item, not neg)
    if isinstance(node, BoolOp):
        is_and = (node.op == "and") != neg
        parts = [_dnf(i, neg) for i in node.items]
        if not is_and:
            return [c for p in parts for c in p]
        acc: list[list[Lit]] = [[]]
        for p in parts:
            acc = [a + b for a in acc for b in p]
            if len(acc) > MAX_DISJUNCTS * 4:
                raise ExprError(node.pos, "too-complex", "the condition has too many alternatives.",
                                "Split it into several rules, or emit an intermediate signal.")
        return acc
    if isinstance(node, Cmp):
        lits = _abs_rewrite(node, neg)
        if lits is not None:
            return lits
        return [[Lit(Cmp(node.pos, NEGATE[node.op], node.left, node.right) if neg else node)]]
    if isinstance(node, Truth):
        item = node.item
        if isinstance(item, SignalRef) and item.attr is None:
            return [[Lit(node, negated=neg)]]
        # a bool fact: `stock.is_st` is `stock.is_st == true`
        return [[Lit(Cmp(node.pos, "!=" if neg else "==", item, Const(node.pos, True)))]]
    raise ExprError(node.pos, "internal", f"cannot normalise {unparse(node)}")  # pragma: no cover


def _abs_rewrite(node: Cmp, neg: bool) -> list[list[Lit]] | None:
    """abs(e) < k  ->  e < k and e > -k ;  abs(e) > k  ->  e > k or e < -k (durable has no abs)."""
    left, right, op = node.left, node.right, node.op
    if isinstance(right, Call) and right.fn == "abs" and not (isinstance(left, Call) and left.fn == "abs"):
        left, right, op = right, left, FLIP[op]
    if not (isinstance(left, Call) and left.fn == "abs"):
        return None
    if neg:
        op = NEGATE[op]
    e, p = left.args[0], node.pos
    minus_k = Neg(p, right) if not isinstance(right, Const) else Const(p, -right.value)
    if op in ("<", "<="):
        return [[Lit(Cmp(p, op, e, right)), Lit(Cmp(p, FLIP[op], e, minus_k))]]
    if op in (">", ">="):
        return [[Lit(Cmp(p, op, e, right))], [Lit(Cmp(p, FLIP[op], e, minus_k))]]
    if op == "==":
        return [[Lit(Cmp(p, "==", e, right))], [Lit(Cmp(p, "==", e, minus_k))]]
    return [[Lit(Cmp(p, "!=", e, right)), Lit(Cmp(p, "!=", e, minus_k))]]


# ------------------------------------------------------------------------------------ templates


@dataclass(frozen=True)
class Placeholder:
    text: str
    node: Node
    spec: str


def parse_template(text: str) -> list[str | Placeholder]:
    """Split "PE {stock.pe_ttm:.1f}" into literal text and checked placeholders."""
    parts: list[str | Placeholder] = []
    try:
        pieces = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ExprError(Pos(1, 0), "template", f"the message template is malformed ({exc}).",
                        "Write {fact.path} or {expression:.1f}; double braces {{ }} for literal ones.") from None
    for literal, field_name, spec, conv in pieces:
        if literal:
            parts.append(literal)
        if field_name is None:
            continue
        if conv:
            raise ExprError(Pos(1, 0), "template", f"conversion `!{conv}` is not supported in templates.")
        if not field_name.strip():
            raise ExprError(Pos(1, 0), "template", "a placeholder `{}` is empty.", "Name a fact, e.g. {stock.price}.")
        if spec:
            check_spec(spec, field_name)
        parts.append(Placeholder(field_name, parse(field_name), spec or ""))
    return parts


_SPEC = re.compile(r"(?:.?[<>=^])?[+\- ]?z?#?0?(?P<width>\d+)?[,_]?(?:\.(?P<precision>\d+))?(?P<type>[eEfFgGn%])?")


def check_spec(spec: str, field_name: str) -> None:
    """A placeholder's format spec must format a number, within the width and precision limits."""
    where = f"`{{{field_name}:{spec if len(spec) <= 24 else spec[:24] + '...'}}}`"
    m = _SPEC.fullmatch(spec)
    if m is None:
        raise ExprError(Pos(1, 0), "template", f"{where} has a format spec numbers cannot use.",
                        "Use a width, a precision and one of e f g n %, e.g. {stock.pe_ttm:.1f} or {x:>8,.2f}.")
    w, p = (n.lstrip("0") or "0" for n in (m["width"] or "0", m["precision"] or "0"))
    if int(w[:9]) > limits.MAX_FORMAT_WIDTH or int(p[:9]) > limits.MAX_FORMAT_PRECISION:  # 9 digits: no huge ints
        raise ExprError(Pos(1, 0), "template", f"{where} asks for a width of {w[:20]} and {p[:20]} digits; "
                        f"at most {limits.MAX_FORMAT_WIDTH} and {limits.MAX_FORMAT_PRECISION} are allowed.",
                        "Messages are read by people: a short width and a few digits.")


def render_template(parts: list[str | Placeholder], env: EvalEnv,
                    fmt_value: Callable[[Value, str], str] | None = None) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        v = value_of(part.node, env) if not isinstance(part.node, Cmp) else truth(part.node, env)
        out.append((fmt_value or _fmt_value)(v, part.spec))
    return "".join(out)


def _fmt_value(v: Value, spec: str) -> str:
    if isinstance(v, Missing):  # visibly a gap, naming what is missing ("[stock.price unknown]")
        return "[" + "; ".join(p if " " in p else f"{p} unknown" for p in v.paths) + "]"
    if isinstance(v, Interval):
        return v.text(spec)
    if spec and isinstance(v, (int, float)) and not isinstance(v, bool):
        try:
            return format(v, spec)
        except ValueError:
            return show(v)
    return show(v)


def to_problem(exc: ExprError, base: Location, col_offset: int = 0, text: Any = None) -> Problem:
    """Place an expression error in the file: `base` is where the expression `text` starts (kept as
    the problem's input)."""
    line = base.line + exc.pos.line - 1 if base.line else 0
    col = (base.col + col_offset + exc.pos.col) if exc.pos.line == 1 else exc.pos.col + 1
    return Problem(Location(base.file, line, col), exc.code, exc.message, exc.hint, input=text)
