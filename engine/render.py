"""Stage 6a, render: a captured trace (engine/capture.py) -> the full evaluation, as the JSON contract.

What a person reads about a run: every fired rule with the facts it matched and each comparison with
both sides' values and its margin; every rule that did not fire with what blocked it (or the facts
it lacks); and the cross-check of durable_rules' decisions against the expression evaluator.

The semantics are engine/expr.py's (truth, value_of, compare, describe_cmp, margin_pct), applied
through per-rule closures built once per rule book: each condition is walked once per symbol, every
comparison it evaluates is kept with its values, and a rule's comparisons and blockers are both read
off that one walk. Anything but plain numbers (bounds, missing facts, dates, signals' scores, ages,
functions) goes through expr.py's own functions, so there is one meaning of each operator. The
result is built as plain data in the exact shape of `Evaluation.model_dump()` and serialised by
pydantic's own encoder (`document`), so it is byte for byte what the models would write, without
validating a model per comparison (a test checks both).
"""

from __future__ import annotations

import datetime as dt
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pydantic_core

from . import expr
from .expr import Interval, Missing

if TYPE_CHECKING:
    from .compile import Compiled, CompiledRule
    from .load import LoadedRule
    from .model import Evaluation, FactValue

SEVERITY_ORDER = {"high": 0, "medium": 1, "low": 2}
_OPS: dict[str, Callable[[Any, Any], bool]] = {">": operator.gt, ">=": operator.ge, "<": operator.lt,
                                                "<=": operator.le, "==": operator.eq, "!=": operator.ne}
_SYM = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
FACT_KINDS = ("stock", "sector", "commodity")

Vals = dict[str, Any]  # fact path -> its value as expr.value_of reads it (float, bool, str, date, Interval)
Sigs = dict[str, list[float]]
Seen = list[tuple[Any, Any, Any]]  # (left, right, holds) of each comparison, in evaluation order
ValueFn = Callable[[Vals, Sigs, "_Env"], Any]
TruthFn = Callable[[Vals, Sigs, "_Env", Seen], Any]
Explain = Callable[[Vals, Sigs, dict[str, str], "_Shown"], tuple[Any, "dict[str, Any] | None"]]


class _Env:
    """The evaluator's environment for what expr.py computes itself (bounds, ages, functions, missing
    inputs): built on first use, since plain comparisons of numbers never need it."""

    __slots__ = ("_env", "_facts", "day", "sigs")

    def __init__(self, facts: Callable[[], dict[str, Any]], sigs: Sigs, day: dt.date | None) -> None:
        self._facts, self.sigs, self.day = facts, sigs, day
        self._env: expr.EvalEnv | None = None

    @property
    def env(self) -> expr.EvalEnv:
        if self._env is None:
            self._env = expr.EvalEnv(self._facts(), self.sigs, self.day)
        return self._env


class _Fact:
    """What expr.value_of reads of a fact (value or bounds, as-of date), rebuilt from a trace."""

    __slots__ = ("as_of", "gt", "gte", "lt", "lte", "value")

    def __init__(self, value: Any, bounds: dict[str, Any], as_of: dt.date) -> None:
        self.value, self.as_of = value, as_of
        self.gt, self.gte, self.lt, self.lte = (bounds.get(b) for b in ("gt", "gte", "lt", "lte"))

    @property
    def is_point(self) -> bool:
        return self.value is not None


# ----------------------------------------------------------------------------------- compiled conditions


def _value_fn(node: expr.Node) -> ValueFn:
    """A closure computing expr.value_of(node, env); plain numbers take the short way."""
    if isinstance(node, expr.Const):
        c = expr.promote_int(node.value)
        return lambda vals, sigs, env: c
    if isinstance(node, expr.FactRef):
        path, miss = node.path, Missing([node.path])
        return lambda vals, sigs, env: vals.get(path, miss)
    if isinstance(node, expr.Arith):
        left, right, op = _value_fn(node.left), _value_fn(node.right), node.op

        def arith(vals: Vals, sigs: Sigs, env: _Env) -> Any:
            a, b = left(vals, sigs, env), right(vals, sigs, env)
            if type(a) is float and type(b) is float:
                if op == "*":
                    return a * b
                if op == "+":
                    return a + b
                if op == "-":
                    return a - b
                if b != 0.0:
                    return a / b
            return expr.value_of(node, env.env)

        return arith
    if isinstance(node, expr.Neg):
        operand = _value_fn(node.operand)

        def neg(vals: Vals, sigs: Sigs, env: _Env) -> Any:
            a = operand(vals, sigs, env)
            return -a if type(a) is float else expr.value_of(node, env.env)

        return neg
    if isinstance(node, expr.SignalRef) and node.attr is None:
        name = node.name
        return lambda vals, sigs, env: bool(sigs.get(name))
    return lambda vals, sigs, env: expr.value_of(node, env.env)


@dataclass(frozen=True)
class _Side:
    kind: str  # const | fact | other
    text: str  # const: its shown value; fact: its path; other: the expression


def _side(node: expr.Node) -> _Side:
    if isinstance(node, expr.Const):
        return _Side("const", expr.show(expr.promote_int(node.value)))
    if isinstance(node, expr.FactRef):
        return _Side("fact", node.path)
    return _Side("other", expr.unparse(node))


@dataclass(frozen=True)
class _Cmp:
    """A comparison's static parts: what describe_cmp prints around the values."""

    op: str
    left: _Side
    right: _Side
    text: str  # the comparison itself (expr.unparse)
    paths: tuple[str, ...]  # fact paths it reads
    head: str = ""  # a fact against a constant: what precedes the fact's value ("stock.pe_ttm ")
    tail: str = ""  # ... and what follows it (" > 40")
    const: float = 0.0  # ... the constant, when it is a number a margin is measured against
    margin: bool = False  # ... whether it is
    above: bool = False  # the operator is > or >=: a positive margin is the fact above the constant


def _cmp(node: expr.Cmp) -> _Cmp:
    left, right = _side(node.left), _side(node.right)
    if left.kind == "fact" and right.kind == "const" and isinstance(node.right, expr.Const):
        c = expr.promote_int(node.right.value)
        margin = type(c) is float and c != 0 and node.op not in ("==", "!=")
        return _Cmp(node.op, left, right, expr.unparse(node), tuple(expr.fact_paths(node)), left.text + " ",
                    f" {node.op} {right.text}", c if margin else 0.0, margin, node.op in (">", ">="))
    return _Cmp(node.op, left, right, expr.unparse(node), tuple(expr.fact_paths(node)))


def _fact_const(node: expr.Node) -> tuple[str, Missing, Any, Callable[[Any, Any], bool], str] | None:
    if isinstance(node, expr.Cmp) and isinstance(node.left, expr.FactRef) and isinstance(node.right, expr.Const):
        return node.left.path, Missing([node.left.path]), expr.promote_int(node.right.value), _OPS[node.op], node.op
    return None


def _truth_fn(node: expr.Node, cmps: list[_Cmp]) -> TruthFn:
    """A closure computing expr.truth(node, env, seen), appending each comparison's (left, right,
    holds) to `seen` in the order expr.truth evaluates them (every operand, no short cut)."""
    if isinstance(node, expr.BoolOp):
        leaves = [_flat_leaf(i) for i in node.items]
        if all(leaves):  # `stock.a > 1 and signal.b`: one loop, no call per leaf
            specs = tuple(x for x in leaves if x is not None)
            for i in node.items:
                if isinstance(i, expr.Cmp):
                    cmps.append(_cmp(i))
            compare, is_and = expr.compare, node.op == "and"

            def flat(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
                result: Any = is_and
                for spec in specs:
                    path = spec[0]
                    if path is None:  # a signal's presence
                        h: Any = bool(sigs.get(spec[1]))
                    else:
                        a, c = vals.get(path, spec[1]), spec[2]
                        h = spec[3](a, c) if type(a) is float and type(c) is float else compare(spec[4], a, c)
                        seen.append((a, c, h))
                    if h is None:  # and: False wins over None, None over True; or: the other way round
                        if result is is_and:
                            result = None
                    elif h is not is_and:
                        result = h
                return result

            return flat
        items = tuple(_truth_fn(i, cmps) for i in node.items)
        if node.op == "and":
            def all_of(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
                results = [f(vals, sigs, env, seen) for f in items]
                if False in results:
                    return False
                return None if None in results else True

            return all_of

        def any_of(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
            results = [f(vals, sigs, env, seen) for f in items]
            if True in results:
                return True
            return None if None in results else False

        return any_of
    if isinstance(node, expr.Not):
        item = _truth_fn(node.item, cmps)

        def negation(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
            r = item(vals, sigs, env, seen)
            return None if r is None else not r

        return negation
    if isinstance(node, expr.Truth):
        value = _value_fn(node.item)

        def test(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
            v = value(vals, sigs, env)
            return None if isinstance(v, Missing) else bool(v)

        return test
    if isinstance(node, expr.Cmp):
        cmps.append(_cmp(node))
        op, opfn = node.op, _OPS[node.op]
        simple = _fact_const(node)
        if simple is not None:
            path, miss, c = simple[0], simple[1], simple[2]

            def fact_const(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
                a = vals.get(path, miss)
                h = opfn(a, c) if type(a) is float and type(c) is float else expr.compare(op, a, c)
                seen.append((a, c, h))
                return h

            return fact_const
        left, right = _value_fn(node.left), _value_fn(node.right)

        def comparison(vals: Vals, sigs: Sigs, env: _Env, seen: Seen) -> Any:
            a, b = left(vals, sigs, env), right(vals, sigs, env)
            h = opfn(a, b) if type(a) is float and type(b) is float else expr.compare(op, a, b)
            seen.append((a, b, h))
            return h

        return comparison
    raise ValueError(f"not a condition: {expr.unparse(node)}")


@dataclass(frozen=True)
class _Leaf:
    """A leaf of a condition as blockers() walks it: a comparison (by its index in `seen`) or a test."""

    negated: bool
    cmp: int  # index of the comparison, or -1 for a test
    node: expr.Node
    text: str
    paths: tuple[str, ...]
    signal: str | None  # a test of a signal's presence: its name


def _leaves(node: expr.Node, negated: bool, out: list[_Leaf], counter: list[int]) -> None:
    if isinstance(node, expr.Not):
        _leaves(node.item, not negated, out, counter)
    elif isinstance(node, expr.BoolOp):
        for item in node.items:
            _leaves(item, negated, out, counter)
    elif isinstance(node, expr.Cmp):
        out.append(_Leaf(negated, counter[0], node, "", (), None))
        counter[0] += 1
    else:
        signal = node.item.name if isinstance(node, expr.Truth) and isinstance(node.item, expr.SignalRef) else None
        out.append(_Leaf(negated, -1, node, expr.unparse(node), tuple(expr.fact_paths(node)), signal))


@dataclass
class RuleView:
    """One rule, ready to explain on any symbol's facts."""

    id: str
    lr: LoadedRule
    cr: CompiledRule
    truth: TruthFn
    cmps: list[_Cmp]
    leaves: list[_Leaf]
    tests: dict[int, TruthFn]  # leaf index -> its truth (tests only)
    produced: list[str]
    would_emit: list[dict[str, Any]]
    reads_by_kind: dict[str, list[tuple[str, str]]]  # fact kind -> (path, field) it reads
    then_paths: list[str]
    paths: tuple[str, ...]  # fact paths the condition reads
    pack: str
    file: str
    line: int
    simple: bool  # every leaf a comparison, none under `not`
    rank: int = 0  # position in (file, line) order: how not-fired rules are listed
    explain: Explain | None = None


def _produced(lr: LoadedRule) -> list[str]:
    then = lr.rule.then
    out = [f"signal:{s.name}" for s in then.signals()]
    out += [f"warning:{w.severity}" for w in then.warnings()]
    out += [f"entry:{e.horizon}" for e in then.entries()]
    if then.target:
        out.append("target")
    if then.rating:
        out.append(f"rating:{then.rating.mode}:{then.rating.value}")
    return out


def _view(lr: LoadedRule, cr: CompiledRule) -> RuleView:
    cmps: list[_Cmp] = []
    truth = _truth_fn(lr.cond, cmps)
    leaves: list[_Leaf] = []
    _leaves(lr.cond, False, leaves, [0])
    if sum(1 for leaf in leaves if leaf.cmp >= 0) != len(cmps):  # pragma: no cover - both walk the same tree
        raise AssertionError(f"{lr.id}: comparisons and leaves disagree")
    tests = {i: _truth_fn(leaf.node, []) for i, leaf in enumerate(leaves) if leaf.cmp < 0}
    reads: dict[str, list[tuple[str, str]]] = {}
    for path in cr.reads:
        ns, _, name = path.partition(".")
        reads.setdefault(ns, []).append((path, name))
    view = RuleView(lr.id, lr, cr, truth, cmps, leaves, tests, _produced(lr),
                    [{"name": s.name, "score": s.score} for s in lr.rule.then.signals()], reads,
                    list(lr.then_paths), tuple(lr.paths), lr.pack, lr.file, lr.line,
                    all(leaf.cmp >= 0 and not leaf.negated for leaf in leaves))
    view.explain = _flat_explainer(view)
    return view


def _flat_leaf(node: expr.Node) -> tuple[Any, ...] | None:
    """A leaf the flat paths take: a fact against a constant, or a signal's presence."""
    simple = _fact_const(node)
    if simple is not None:
        return simple
    if isinstance(node, expr.Truth) and isinstance(node.item, expr.SignalRef) and node.item.attr is None:
        return (None, node.item.name)
    return None


def _flat_explainer(v: RuleView) -> Explain | None:
    """For a rule that did not fire whose condition is facts against constants and signals' presence
    joined by one `and` or `or` (most rules): its truth and its not-fired entry in one pass. The entry
    is None where the general path must say it (a comparison left undecided by a bound with every fact
    present)."""
    cond = v.lr.cond
    items = cond.items if isinstance(cond, expr.BoolOp) else (cond,)
    leaves = [_flat_leaf(i) for i in items]
    if not all(leaves):
        return None
    cmps = iter(v.cmps)
    flat = tuple((*leaf, next(cmps) if leaf[0] is not None else None) for leaf in leaves if leaf is not None)
    is_and = not isinstance(cond, expr.BoolOp) or cond.op == "and"
    rule, pack, file, line, paths, would_emit = v.id, v.pack, v.file, v.line, v.paths, v.would_emit
    compare = expr.compare

    def explain(vals: Vals, sigs: Sigs, why: dict[str, str], shown: _Shown) -> tuple[Any, dict[str, Any] | None]:
        result: Any = is_and
        blocked: list[str] = []
        lacking = False
        for leaf in flat:
            path = leaf[0]
            if path is None:  # a signal's presence
                h = bool(sigs.get(leaf[1]))
                if not h:
                    blocked.append(f"signal {leaf[1]} is absent")
            else:
                _, _, c, opfn, op, cmp = leaf
                a = vals.get(path)
                if type(a) is float:
                    h = opfn(a, c)
                    if not h:
                        blocked.append(_described(cmp, a, c, h, shown)[0])
                elif a is None:
                    h, lacking = None, True
                    blocked.append(f"{cmp.text}: missing {path}")
                else:
                    h = compare(op, a, c)
                    if h is None:
                        return None, None  # undecided on a bound: the general path
                    if h is False:
                        blocked.append(_described(cmp, a, c, h, shown)[0])
            if h is None:
                if result is is_and:
                    result = None
            elif h is not is_and:
                result = h
        if result is None or (lacking and result is not False):
            missing = [p if p not in why else f"{p} (not computed: {why[p]})" for p in paths if p not in vals]
            status = "not_evaluable"
        else:
            missing, status = [], "false"
        return result, {"rule": rule, "pack": pack, "file": file, "line": line, "status": status, "missing": missing,
                        "comparisons": [], "blocked_by": blocked, "would_emit": would_emit}

    return explain


_VIEWS: dict[tuple[int, int], tuple[Any, Any, list[RuleView]]] = {}


def views(rules: dict[str, LoadedRule], compiled: Compiled) -> list[RuleView]:
    """Every rule of a book, in book order, compiled for explaining (once per book and compilation)."""
    key = (id(rules), id(compiled))
    hit = _VIEWS.get(key)
    if hit is not None and hit[0] is rules and hit[1] is compiled:
        return hit[2]
    if len(_VIEWS) > 16:
        _VIEWS.clear()
    built = [_view(lr, compiled.rules[rid]) for rid, lr in rules.items()]
    for rank, v in enumerate(sorted(built, key=lambda v: (v.file, v.line))):
        v.rank = rank
    _VIEWS[key] = (rules, compiled, built)
    return built


class Conditions:
    """Every rule's condition as the explanations evaluate it (expr.truth's answers, from the closures
    `views` builds once per rule book), for a caller testing many rules on many fact sets."""

    def __init__(self, rules: dict[str, LoadedRule], compiled: Compiled) -> None:
        self._truth = {v.id: v.truth for v in views(rules, compiled)}

    @staticmethod
    def values(facts: dict[str, FactValue]) -> Vals:
        """Facts as the closures read them: what expr.value_of gives for a reference to each."""
        return {p: expr.promote_int(fv.value) if fv.is_point else Interval.of(fv) for p, fv in facts.items()}

    def truth(self, rule_id: str, facts: dict[str, FactValue], vals: Vals, sigs: Sigs,
              day: dt.date | None) -> bool | None:
        """expr.truth of the rule's condition on `facts` (`vals`: their `values`) and signals `sigs`."""
        out: bool | None = self._truth[rule_id](vals, sigs, _Env(lambda: facts, sigs, day), [])
        return out


# ----------------------------------------------------------------------------------- text


class _Shown(dict[float, str]):
    """expr.show of numbers, remembered per render (a symbol's values recur across its rules)."""

    def __missing__(self, v: float) -> str:
        text = self[v] = expr.fmt_num(round(v, 4))
        return text


def _show(v: Any, shown: _Shown) -> str:
    if type(v) is float:
        return shown[v]
    return expr.show(v)


def _margin(op: str, a: Any, b: Any) -> float | None:
    if type(a) is not float or type(b) is not float or b == 0 or op == "==" or op == "!=":
        return None
    diff = (a - b) / abs(b) * 100
    return round(diff if op in (">", ">=") else -diff, 2)


def _describe(c: _Cmp, a: Any, b: Any, holds: Any, shown: _Shown) -> str:
    """expr.describe_cmp, from the comparison's static parts."""
    return _described(c, a, b, holds, shown)[0]


def _described(c: _Cmp, a: Any, b: Any, holds: Any, shown: _Shown) -> tuple[str, float | None]:
    """expr.describe_cmp and expr.margin_pct of one comparison."""
    if c.head and type(a) is float:  # a number against a constant: most comparisons
        if c.margin:
            d = (a - c.const) / abs(c.const) * 100
            d = round(d if c.above else -d, 2)
            return f"{c.head}{shown[a]}{c.tail} ({'holds' if holds else 'fails'} by {abs(d):.1f}%)", d
        text = c.head + shown[a] + c.tail
    else:
        text = f"{_side_text(c.left, a, shown)} {c.op} {_side_text(c.right, b, shown)}"
    m: float | None = None
    if type(a) is float and type(b) is float and b != 0 and c.op != "==" and c.op != "!=":
        d = (a - b) / abs(b) * 100
        m = round(d if c.op[0] == ">" else -d, 2)
    if holds is None:
        return text + " (undecided)", m
    if m is not None:
        return f"{text} ({'holds' if holds else 'fails'} by {abs(m):.1f}%)", m
    return f"{text} ({'holds' if holds else 'fails'})", m


def _side_text(s: _Side, v: Any, shown: _Shown) -> str:
    if s.kind == "const":
        return s.text
    if s.kind == "fact":
        return f"{s.text} ({_show(v, shown)})" if isinstance(v, Interval) else f"{s.text} {_show(v, shown)}"
    return f"{s.text} = {_show(v, shown)}"


def _plain(v: Any, shown: _Shown) -> Any:
    """A comparison's side as the output holds it (explain's _jsonable)."""
    if type(v) is float:
        return round(v, 6)
    if isinstance(v, (Interval, Missing)):
        return _show(v, shown)
    return v


# ----------------------------------------------------------------------------------- rendering


def _values(trace: dict[str, Any]) -> tuple[Vals, dict[str, Any], Callable[[], dict[str, Any]]]:
    """The facts of a trace as the evaluator reads them, as the output shows them, and (built on
    demand) as expr.EvalEnv holds them."""
    bounds, dates = trace["bounds"], set(trace["dates"])
    vals: Vals = {}
    shown: dict[str, Any] = {}
    for use in trace["facts"]:
        path, value = use["path"], use["value"]
        shown[path] = value
        if path in bounds:
            vals[path] = Interval.of(_Fact(None, bounds[path], dt.date.min))  # type: ignore[arg-type]
        elif path in dates:
            vals[path] = dt.date.fromisoformat(value)
        else:
            vals[path] = float(value) if type(value) is int else value

    def facts() -> dict[str, Any]:
        out = {}
        for use in trace["facts"]:
            path = use["path"]
            value = None if path in bounds else dt.date.fromisoformat(use["value"]) if path in dates \
                else use["value"]
            out[path] = _Fact(value, bounds.get(path, {}), dt.date.fromisoformat(use["as_of"]))
        return out

    return vals, shown, facts


def _seen_value(fact: dict[str, Any], name: str) -> Any:
    if name in fact:
        return fact[name]
    found = sorted((k.split("__", 1)[1], v) for k, v in fact.items() if k.startswith(name + "__"))
    return " and ".join(f"{_SYM[k]} {expr.fmt_num(v)}" for k, v in found) or None


def _as_stated(v: Any) -> Any:
    """A signal score as its rule wrote it: durable holds every number as a double (rete.encode_fact)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def render(trace: dict[str, Any], rules: dict[str, LoadedRule], compiled: Compiled) -> dict[str, Any]:
    """The evaluation of a trace on the rules it ran on, as `Evaluation.model_dump()` data: serialised by
    `document`, or made a model by `model`. The lists and texts it shares with the rule views are not
    to be changed in place."""
    vals, stated, facts = _values(trace)
    day = dt.date.fromisoformat(trace["date"]) if trace["date"] else None
    sigs: Sigs = {}
    for s in trace["signals"]:
        sigs.setdefault(s["name"], []).append(s["score"])
    env = _Env(facts, sigs, day)
    why = trace["unavailable"]
    dates, ints = set(trace["dates"]), {p for p, v in stated.items() if type(v) is int}
    asserted = trace["asserted"]
    shown = _Shown()
    done = {rule_id for rule_id, _ in trace["firings"]}
    walked: dict[str, Seen] = {}
    listed: list[tuple[str, int, dict[str, Any]]] = []
    warnings = list(trace["warnings"])
    all_views = views(rules, compiled)
    for v in all_views:
        if v.explain is not None and v.id not in done:
            t, n = v.explain(vals, sigs, why, shown)
            if n is not None:
                if t is True:
                    warnings.append({"rule": "engine.cross-check", "severity": "high", "message":
                                     f"durable_rules did not fire {v.id}, but its condition holds on the same facts."})
                listed.append((n["status"], v.rank, n))
                continue
        seen: Seen = []
        t = v.truth(vals, sigs, env, seen)
        if v.id in done:
            walked[v.id] = seen
            if t is not True:
                warnings.append({"rule": "engine.cross-check", "severity": "high", "message": (
                    f"durable_rules fired {v.id}, but its condition evaluates to "
                    f"{'unknown' if t is None else 'false'} on the same facts.")})
            continue
        if t is True:
            warnings.append({"rule": "engine.cross-check", "severity": "high", "message":
                             f"durable_rules did not fire {v.id}, but its condition holds on the same facts."})
        n = _not_fired(v, t, seen, vals, sigs, env, why, shown)
        listed.append((n["status"], v.rank, n))
    listed.sort(key=_first_two)
    not_fired = [n for _, _, n in listed]
    by_id = _by_id(all_views)
    fired: list[dict[str, Any]] = []
    for rule_id, matched in trace["firings"]:
        v = by_id[rule_id]
        lr = v.lr
        seen_facts: dict[str, Any] = {}
        used: list[dict[str, Any]] = []
        for alias, kind in v.cr.aliases.items():
            fact = matched.get(alias)
            if fact is None:
                continue
            if type(fact) is str:
                fact = asserted[fact]
            if kind.startswith("signal:"):
                used.append({"name": fact.get("name"), "score": _as_stated(fact.get("score")), "by": fact.get("by")})
            elif kind in FACT_KINDS:
                for path, name in v.reads_by_kind.get(kind, ()):
                    value = fact[name] if name in fact else _seen_value(fact, name)
                    if path in dates:
                        value = vals[path]  # durable matched it as a day number
                    elif path in ints and value == stated[path]:
                        value = stated[path]  # durable holds every number as a double (rete.encode_fact)
                    seen_facts[path] = value
        for path in v.then_paths:  # facts its messages, entries and targets were computed from
            if path not in seen_facts and path in stated:
                seen_facts[path] = vals[path] if path in dates else stated[path]
        if len(used) > 1:
            used.sort(key=lambda u: (str(u["name"]), str(u["by"])))
        comparisons = []
        for c, (a, b, h) in zip(v.cmps, walked[rule_id], strict=True):
            text, m = _described(c, a, b, h, shown)
            comparisons.append({"text": text, "left": round(a, 6) if type(a) is float else _plain(a, shown),
                                "op": c.op, "right": round(b, 6) if type(b) is float else _plain(b, shown),
                                "holds": h, "margin_pct": m})
        fired.append({"rule": rule_id, "title": lr.rule.title, "pack": v.pack, "file": v.file, "line": v.line,
                      "salience": lr.rule.salience, "facts": seen_facts, "signals_used": used,
                      "comparisons": comparisons, "produced": v.produced})
    if len(warnings) != len(trace["warnings"]):
        warnings.sort(key=lambda w: (SEVERITY_ORDER[w["severity"]], w["rule"]))
    t = trace
    return {"symbol": t["symbol"], "name": t["name"], "sector": t["sector"], "as_of": t["as_of"],
            "rating": t["rating"], "score": t["score"], "rating_info": t["rating_info"], "target": t["target"],
            "entries": t["entries"], "warnings": warnings, "coverage": t["coverage"], "fragility": t["fragility"],
            "valuations": t["valuations"], "signals": t["signals"], "fired": fired,
            "not_fired": not_fired, "facts": _typed(t["facts"], dates), "fact_checks": t["fact_checks"],
            "run_id": t["run_id"],
            "ruleset_hash": t["ruleset_hash"], "facts_hash": t["facts_hash"],
            "engine_version": t["engine_version"], "disclaimer": t["disclaimer"]}


def _typed(facts: list[dict[str, Any]], dates: set[str]) -> list[dict[str, Any]]:
    """The facts as the evaluation gives them: date values as dates (the trace holds them as text)."""
    if not dates:
        return facts
    return [{**f, "value": dt.date.fromisoformat(f["value"])} if f["path"] in dates else f for f in facts]


def _first_two(item: tuple[str, int, dict[str, Any]]) -> tuple[str, int]:
    return item[0], item[1]


_BY_ID: dict[int, tuple[list[RuleView], dict[str, RuleView]]] = {}


def _by_id(all_views: list[RuleView]) -> dict[str, RuleView]:
    hit = _BY_ID.get(id(all_views))
    if hit is None or hit[0] is not all_views:
        if len(_BY_ID) > 16:
            _BY_ID.clear()
        hit = _BY_ID[id(all_views)] = (all_views, {v.id: v for v in all_views})
    return hit[1]


def _not_fired(v: RuleView, t: Any, seen: Seen, vals: Vals, sigs: Sigs, env: _Env, why: dict[str, str],
               shown: _Shown) -> dict[str, Any]:
    missing: list[str] = []
    for p in v.paths:
        if p not in vals:
            missing.append(p if p not in why else f"{p} (not computed: {why[p]})")
    if t is None or (missing and t is not False):
        status = "not_evaluable"
        if not missing:
            # no fact is absent: a value could not be computed (a zero divisor, no evaluation date), or a
            # bound leaves the comparison undecided
            missing = list(dict.fromkeys(
                reason for c, (a, b, h) in zip(v.cmps, seen, strict=True) if h is None
                for reason in ([p for x in (a, b) if isinstance(x, Missing) for p in x.paths]
                               or [_describe(c, a, b, h, shown)])))
    else:
        status, missing = "false", []
    # blocked_by: the leaves of the condition that are not true, with their values and margins
    blocked: list[str] = []
    cmps = v.cmps
    if v.simple:
        for c, (a, b, h) in zip(cmps, seen, strict=True):
            if h is False:
                blocked.append(_described(c, a, b, h, shown)[0])
            elif h is None:
                lacks = [p for p in c.paths if p not in vals]
                blocked.append(f"{c.text}: " + (f"missing {', '.join(lacks)}" if lacks
                                                else _described(c, a, b, h, shown)[0]))
        return {"rule": v.id, "pack": v.pack, "file": v.file, "line": v.line, "status": status,
                "missing": missing, "comparisons": [], "blocked_by": blocked, "would_emit": v.would_emit}
    for i, leaf in enumerate(v.leaves):
        negated = leaf.negated
        k = leaf.cmp
        if k >= 0:
            a, b, h = seen[k]
            if h is None:
                c = cmps[k]
                lacks = [p for p in c.paths if p not in vals]
                blocked.append(f"{c.text}: " + (f"missing {', '.join(lacks)}" if lacks
                                                else _describe(c, a, b, h, shown)))
            elif h is negated:
                blocked.append(("not " if negated else "") + _describe(cmps[k], a, b, h, shown))
            continue
        r = v.tests[i](vals, sigs, env, [])
        if r is None:
            lacks = [p for p in leaf.paths if p not in vals]
            blocked.append(f"{leaf.text}: " + (f"missing {', '.join(lacks)}" if lacks else "undecided"))
        elif r is negated:
            if leaf.signal is not None:
                blocked.append(f"signal {leaf.signal} is {'present' if r else 'absent'}")
            else:
                blocked.append(f"{'not ' if negated else ''}{leaf.text} is {str(r).lower()}")
    return {"rule": v.id, "pack": v.pack, "file": v.file, "line": v.line, "status": status, "missing": missing,
            "comparisons": [], "blocked_by": blocked, "would_emit": v.would_emit}


def document(evaluation: dict[str, Any]) -> str:
    """The evaluation's JSON, as `Evaluation.model_dump_json()` writes it."""
    return pydantic_core.to_json(evaluation).decode("utf-8")


def model(evaluation: dict[str, Any]) -> Evaluation:
    from .model import Evaluation

    return Evaluation.model_validate(evaluation)
