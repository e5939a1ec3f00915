"""Stage 3, compile: checked rules -> durable_rules ruleset definitions (pure data).

This module never imports durable. It owns the translation and the engine's structural limits:
- each `when` becomes DNF; each conjunction one `all` of per-fact elements (stock, sector,
  commodity, one per signal), joined across facts by alias references;
- comparisons are rearranged so a single fact field stands on the left, as durable requires;
- facts given only as bounds ("J above 80") match through their bound fields, never a made-up value;
- rules that test the absence of a signal are stratified and wait for a phase marker, because
  durable does not withdraw an activation when the negated fact arrives later;
- rules are sharded so no fact can meet more than a safe number of condition nodes (durable
  fails the whole assert past 64, silently for every rule);
- division gets a float numerator: durable divides two integers as integers (3 / 2 == 1);
- a side of a comparison durable cannot compute (a fact times or over another fact, min/max/round,
  age(), days_since()) becomes a synthesised field: its value is computed from the resolved facts
  before they are asserted (`synthesised`, see pipeline.durable_facts), and durable still does the
  comparing. A side with no value (a missing input, a zero divisor) leaves the field out: no match,
  and the evaluator says not evaluable, so the cross-check agrees;
- dates are compared as day numbers (date.toordinal()), on both sides.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from . import expr
from .errors import Problem, RuleError, problem
from .load import LoadedRule, RuleBook
from .model import Catalog

NAMESPACE_ORDER = {"stock": 0, "sector": 1, "commodity": 2}
CLOSE_KEY = "close__"  # a no-op rule every shard gets; see rete.Rete.run for why
CLOSE_RULE = {"pri": 65000, "all": [{"m": {"kind": "close__"}}]}
NODE_BUDGET = 56  # condition nodes one fact kind may meet in one ruleset (durable's stack holds 64)
PRI_BASE = 32768
BOUND_FIELDS = {">": ("gt", "gte"), ">=": ("gt", "gte"), "<": ("lt", "lte"), "<=": ("lt", "lte")}
DURABLE_OP = {">": "$gt", ">=": "$gte", "<": "$lt", "<=": "$lte", "!=": "$neq"}
ARITH = {"+": "$add", "-": "$sub", "*": "$mul", "/": "$div"}


@dataclass
class CompiledRule:
    """What rete.py needs to run one rule and read it back."""

    id: str
    key: str  # the rule's name inside its durable ruleset
    shard: str
    stratum: int
    pri: int
    emits: list[dict[str, Any]]
    aliases: dict[str, str]  # alias -> fact kind ("stock", "signal:NAME", ...)
    reads: list[str]
    nodes: dict[str, int]


@dataclass
class Compiled:
    """The whole rule book as durable rulesets, plus the routing rete.py needs."""

    digest: str
    shards: dict[str, dict[str, Any]]  # durable ruleset name -> {rule key: definition}
    rules: dict[str, CompiledRule]  # rule id -> compiled
    by_key: dict[tuple[str, str], str]  # (shard, key) -> rule id
    kinds: dict[str, set[str]]  # shard -> fact kinds its rules read ("stock", "signal", "phase")
    consumers: dict[str, list[str]]  # signal name -> shards with a rule that reads it
    phases: list[tuple[int, list[str]]]  # (stratum, shards) markers to assert in order
    bounded: set[str] = field(default_factory=set)  # fact paths matched through bound fields
    synthesised: dict[str, expr.Node] = field(default_factory=dict)  # "stock.syn__..." -> what to compute

    @cached_property
    def read_paths(self) -> frozenset[str]:
        """Every fact path some condition reads: the only fields asserted into durable."""
        return frozenset(p for cr in self.rules.values() for p in cr.reads)

    @cached_property
    def read_fields(self) -> tuple[tuple[str, str, str], ...]:
        """(path, namespace, name) of each read path, in a fixed order."""
        return tuple((p, *p.split(".", 1)) for p in sorted(self.read_paths))  # type: ignore[misc]

    def definitions(self) -> dict[str, dict[str, Any]]:
        """A deep copy for durable (set_rulesets consumes what it is given)."""
        copy: dict[str, dict[str, Any]] = json.loads(json.dumps(self.shards))
        return copy


class CompileError(Exception):
    pass


# --------------------------------------------------------------------------------- numbers


def literal(v: Any, pos: expr.Pos) -> Any:
    """A constant durable can parse: it rejects exponent notation such as 1e-05. Dates are day numbers."""
    if isinstance(v, (bool, str)):
        return v
    if isinstance(v, dt.date):
        return v.toordinal()
    if isinstance(v, float) and v.is_integer() and abs(v) < 2**53:
        return int(v)
    if "e" in repr(v).lower():
        raise expr.ExprError(pos, "number-range",
                             f"the number {v!r} is too small or too large for the rule engine.",
                             "Rescale it (e.g. use percent or millions) so it is written without an exponent.")
    return v


def fold_constant(node: expr.Node) -> tuple[bool, Any]:
    """Fold an arithmetic subtree made only of literals (never reads facts); dates fold to day numbers."""
    if isinstance(node, expr.Const):
        return True, node.value.toordinal() if isinstance(node.value, dt.date) else node.value
    if isinstance(node, expr.Neg):
        ok, v = fold_constant(node.operand)
        return ok, (-v if ok else None)
    if isinstance(node, expr.Arith):
        lo, lv = fold_constant(node.left)
        ro, rv = fold_constant(node.right)
        if lo and ro:
            v = expr.apply_arith(node, [float(lv), float(rv)])
            if isinstance(v, expr.Missing):
                raise expr.ExprError(node.pos, "division-by-zero", f"`{expr.unparse(node)}` divides by zero.")
            return True, v
    return False, None


# --------------------------------------------------------------------------------- elements


def _element_of(node: expr.Node) -> str | None:
    """Which fact element a reference belongs to: a namespace, or signal:NAME."""
    if isinstance(node, expr.FactRef):
        return node.ns
    if isinstance(node, expr.SignalRef):
        return f"signal:{node.name}"
    return None


def _order(element: str) -> tuple[int, str]:
    return (NAMESPACE_ORDER.get(element, 3), element)


def _alias(element: str) -> str:
    return element if ":" not in element else "sig_" + element.split(":", 1)[1]


def _refs(node: expr.Node) -> list[expr.Node]:
    return [n for n in expr.walk(node) if isinstance(n, (expr.FactRef, expr.SignalRef))]


def _field(ref: expr.Node) -> str:
    if isinstance(ref, expr.FactRef):
        return ref.name
    return "score"


def contains(node: expr.Node, target: expr.Node) -> bool:
    """Whether `target` occurs anywhere in the expression `node`."""
    return any(n == target for n in expr.walk(node))


def isolate(left: expr.Node, op: str, right: expr.Node, target: expr.Node) -> tuple[str, expr.Node]:
    """Rewrite `left op right` (target inside left) as `target op' right'`; linear terms only."""
    p = left.pos
    while left != target:
        if isinstance(left, expr.Neg):
            left, op, right = left.operand, expr.FLIP[op], expr.Neg(p, right)
        elif isinstance(left, expr.Arith):
            a, b = left.left, left.right
            in_a = contains(a, target)
            if left.op == "+":
                left, right = (a, expr.Arith(p, "-", right, b)) if in_a else (b, expr.Arith(p, "-", right, a))
            elif left.op == "-":
                if in_a:
                    left, right = a, expr.Arith(p, "+", right, b)
                else:
                    left, op, right = b, expr.FLIP[op], expr.Arith(p, "-", a, right)
            elif left.op in ("*", "/"):
                other = b if in_a else a
                ok, c = fold_constant(other)
                if not ok or (left.op == "/" and not in_a):
                    raise expr.ExprError(left.pos, "not-linear",
                                         f"cannot compile `{expr.unparse(left)}`: a fact is multiplied or "
                                         "divided by another fact on the side being tested.",
                                         "Put a single fact on one side, e.g. `stock.a > 2 * stock.b` "
                                         "instead of `stock.a / stock.b > 2`.")
                if c == 0:
                    raise expr.ExprError(left.pos, "division-by-zero", "multiplying or dividing by zero.")
                inverse = "/" if left.op == "*" else "*"
                left, right = (a if in_a else b), expr.Arith(p, inverse, right, expr.Const(p, c))
                if c < 0:
                    op = expr.FLIP[op]
            else:  # pragma: no cover - guarded by the type checker
                raise expr.ExprError(left.pos, "not-linear", "unsupported term")
        else:
            raise expr.ExprError(left.pos, "not-linear",
                                 f"cannot compile `{expr.unparse(left)}` for the rule engine.",
                                 "Compare a fact with an expression, e.g. `stock.price < 0.9 * stock.target`.")
    return op, right


SYNTH_PREFIX = "syn__"  # fact names cannot contain "__" (load.py), so these never clash with a catalog's


def _needs_synthesis(node: expr.Node) -> bool:
    """Whether durable cannot compute `node` itself: a product or quotient of facts, or a function."""
    for n in expr.walk(node):
        if isinstance(n, expr.Call):
            return True
        if isinstance(n, expr.Arith) and ((n.op == "*" and _refs(n.left) and _refs(n.right))
                                          or (n.op == "/" and _refs(n.right))):
            return True
    return False


class _RuleCompiler:
    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self.bounded: set[str] = set()
        self.synthesised: dict[str, expr.Node] = {}

    def synthesise(self, side: expr.Node) -> expr.Node:
        """`side` itself when durable can compute it, else a reference to a field computed beforehand."""
        if not _needs_synthesis(side):
            return side
        refs = _refs(side)
        signals = [r for r in refs if isinstance(r, expr.SignalRef)]
        if signals:
            raise expr.ExprError(signals[0].pos, "not-linear",
                                 f"cannot compile `{expr.unparse(side)}`: a signal's score arrives while the rules "
                                 "run, so it cannot be multiplied or divided by a fact or passed to a function.",
                                 "Compare the score with a number or with a sum of facts.")
        home = max((_element_of(r) or "" for r in refs), key=_order, default="stock")
        digest = hashlib.sha1(expr.unparse(side).encode()).hexdigest()[:10]
        path = f"{home}.{SYNTH_PREFIX}{digest}"
        self.synthesised[path] = side
        return expr.FactRef(side.pos, path)

    def rvalue(self, node: expr.Node, home: str) -> Any:
        ok, c = fold_constant(node)
        if ok:
            return literal(c, node.pos)
        if isinstance(node, (expr.FactRef, expr.SignalRef)):
            element = _element_of(node)
            assert element is not None
            if element == home:
                return {"$m": _field(node)}
            return {_alias(element): _field(node)}
        if isinstance(node, expr.Neg):
            return {"$mul": {"$l": self.rvalue(node.operand, home), "$r": -1}}
        if isinstance(node, expr.Arith):
            left = self.rvalue(node.left, home)
            if node.op == "/":
                # durable divides two integers as integers (3 / 2 == 1): force a float numerator.
                left = {"$mul": {"$l": left, "$r": 1.0}}
            return {ARITH[node.op]: {"$l": left, "$r": self.rvalue(node.right, home)}}
        if isinstance(node, expr.Call):
            raise expr.ExprError(node.pos, "function-in-when",
                                 f"`{node.fn}(...)` cannot be used inside a comparison here.",
                                 "abs(...) may stand alone on one side of a comparison; min, max and round "
                                 "are for entry and target values.")
        raise expr.ExprError(node.pos, "internal", f"cannot compile {expr.unparse(node)}")  # pragma: no cover

    def comparison(self, cmp: expr.Cmp) -> tuple[str, Any, set[str], list[tuple[str, str]]]:
        """-> (element, durable condition, elements it joins to, (element, field) that must exist).

        durable evaluates arithmetic over a missing field as if it were there (the condition can
        hold with no value at all), so every field read on the right side gets an `$ex` test.
        """
        if not (_refs(cmp.left) or _refs(cmp.right)):
            raise expr.ExprError(cmp.pos, "constant", f"`{expr.unparse(cmp)}` does not read any fact.")
        cmp = expr.Cmp(cmp.pos, cmp.op, self.synthesise(cmp.left), self.synthesise(cmp.right))
        refs = _refs(cmp.left) + _refs(cmp.right)
        target = max(refs, key=lambda r: _order(_element_of(r) or ""))
        home = _element_of(target) or ""
        left, op, right = cmp.left, cmp.op, cmp.right
        if not contains(left, target):
            left, op, right = right, expr.FLIP[op], left
        op, right = isolate(left, op, right, target)
        if contains(right, target):
            raise expr.ExprError(cmp.pos, "not-linear",
                                 f"`{expr.unparse(cmp)}` uses {expr.unparse(target)} on both sides.",
                                 "Simplify it so the fact appears once.")
        field_name = _field(target)
        joins = {e for e in (_element_of(r) for r in _refs(right)) if e and e != home}
        exists = [(_element_of(r) or "", _field(r)) for r in _refs(right)]
        rv = self.rvalue(right, home)
        if op == "==":
            cond: Any = {field_name: rv}
        else:
            cond = {DURABLE_OP[op]: {field_name: rv}}
        if (isinstance(target, expr.FactRef) and op in BOUND_FIELDS and not joins
                and not _refs(right) and (spec := self.catalog.spec(target.path)) and spec.bounds):
            self.bounded.add(target.path)
            exclusive, inclusive = BOUND_FIELDS[op]
            strict = op in (">", "<")
            # `x > c` holds if x > c, or x is known to be > b with b >= c, or >= b with b > c.
            alts = [cond,
                    {("$gte" if op.startswith(">") else "$lte"): {f"{field_name}__{exclusive}": rv}},
                    {DURABLE_OP[(">" if op.startswith(">") else "<") if strict else op]:
                     {f"{field_name}__{inclusive}": rv}}]
            cond = {"$or": alts}
        return home, cond, joins, exists

    def conjunction(self, lits: list[expr.Lit], stratum_marker: int | None) -> tuple[list[Any], dict[str, str],
                                                                                        dict[str, int]]:
        conds: dict[str, list[Any]] = defaultdict(list)
        joins: dict[str, set[str]] = defaultdict(set)
        negated: list[str] = []
        for lit in lits:
            node = lit.node
            if isinstance(node, expr.Truth):
                assert isinstance(node.item, expr.SignalRef)
                element = f"signal:{node.item.name}"
                if lit.negated:
                    negated.append(element)
                else:
                    conds.setdefault(element, [])
                continue
            assert isinstance(node, expr.Cmp)
            home, cond, refs, exists = self.comparison(node)
            for element, name in exists:
                test = {"$ex": {name: 1}}
                if test not in conds[element]:
                    conds[element].append(test)
            conds[home].append(cond)
            joins[home] |= refs
        elements = sorted(conds, key=_order)
        # a join may only refer to elements listed before it
        for e in elements:
            for j in joins[e]:
                if _order(j) > _order(e):  # pragma: no cover - target is always the latest element
                    raise CompileError(f"join order {e} -> {j}")
        out: list[Any] = []
        aliases: dict[str, str] = {}
        nodes: dict[str, int] = defaultdict(int)
        if stratum_marker is not None:
            out.append({"phase__": {"$and": [{"kind": "phase"}, {"n": stratum_marker}]}})
            aliases["phase__"] = "phase"
            nodes["phase"] += 1
        for e in elements:
            base: list[Any] = [{"kind": "signal"}, {"name": e.split(":", 1)[1]}] if e.startswith("signal:") \
                else [{"kind": e}]
            out.append({_alias(e): {"$and": base + conds[e]}})
            aliases[_alias(e)] = e
            nodes[e] += len(base) - 1 + sum(_count(c) for c in conds[e])
        for i, e in enumerate(negated):
            name = e.split(":", 1)[1]
            out.append({f"no{i}_{name}$not": {"$and": [{"kind": "signal"}, {"name": name}]}})
            nodes[e] += 1
        if not out:
            raise CompileError("empty conjunction")
        return out, aliases, nodes


def _count(cond: Any) -> int:
    if isinstance(cond, dict) and len(cond) == 1:
        (k, v), = cond.items()
        if k in ("$or", "$and"):
            return sum(_count(c) for c in v)
    return 1


# --------------------------------------------------------------------------------- strata


def strata(rules: list[LoadedRule]) -> tuple[dict[str, int], list[Problem]]:
    """Stratify by signal negation: a rule testing `not signal.X` runs after every producer of X."""
    producers: dict[str, list[str]] = defaultdict(list)
    for r in rules:
        for s in r.rule.then.signals():
            producers[s.name].append(r.id)
    reads = {r.id: expr.signal_refs(r.cond) for r in rules}
    level = {r.id: 0 for r in rules}
    limit = len(rules) + 1
    for _ in range(limit):
        changed = False
        for r in rules:
            want = 0
            for sig, neg in reads[r.id]:
                for p in producers.get(sig, []):
                    want = max(want, level[p] + (1 if neg else 0))
            if want > level[r.id]:
                level[r.id] = want
                changed = True
                if want > limit:
                    break
        if not changed:
            return level, []
    cyclic = sorted(r.id for r in rules if level[r.id] >= limit - 1) or sorted(level)
    r0 = next(r for r in rules if r.id == cyclic[0])
    return level, [problem(r0.file, r0.line, 1, "negation-cycle",
                           "rules depend on the absence of each other's signals: "
                           + ", ".join(cyclic[:6]) + ".",
                           "Break the cycle: a signal may not depend, through `not`, on itself.", r0.id)]


# --------------------------------------------------------------------------------- compile


def compile_rules(book: RuleBook, catalog: Catalog) -> Compiled:
    """Compile every rule, or raise RuleError with every rule that cannot be compiled."""
    problems: list[Problem] = []
    level, errs = strata(book.rules)
    problems.extend(errs)
    rc = _RuleCompiler(catalog)
    pieces: list[tuple[LoadedRule, dict[str, Any], dict[str, str], dict[str, int]]] = []
    for r in book.rules:
        try:
            needs_marker = any(neg for _, neg in expr.signal_refs(r.cond))
            marker = max(level[r.id], 1) if needs_marker else None
            conjunctions = expr.to_dnf(r.cond)
            built = [rc.conjunction(c, marker) for c in conjunctions]
        except expr.ExprError as exc:
            problems.append(Problem(expr.to_problem(exc, r.when_at).loc, exc.code, exc.message, exc.hint,
                                    rule=r.id, input=r.rule.when))
            continue
        aliases: dict[str, str] = {}
        nodes: dict[str, int] = defaultdict(int)
        for _, a, n in built:
            aliases.update(a)
            for k, v in n.items():
                nodes[k] += v
        pri = PRI_BASE - r.rule.salience
        if len(built) == 1:
            definition: dict[str, Any] = {"pri": pri, "all": built[0][0]}
        else:
            definition = {"pri": pri, "any": [{f"c{i}$all": b[0]} for i, b in enumerate(built)]}
        for element, count in nodes.items():
            if count > NODE_BUDGET:
                problems.append(problem(r.file, r.line, 1, "too-many-conditions",
                                        f"the rule tests {count} conditions on {element} facts; the engine "
                                        f"allows at most {NODE_BUDGET} per fact.",
                                        "Split it into smaller rules joined by signals.", r.id))
        pieces.append((r, definition, aliases, dict(nodes)))
    if problems:
        raise RuleError(problems)

    digest = hashlib.sha256((book.digest + json.dumps(
        [(r.id, d) for r, d, _, _ in pieces], sort_keys=True, default=str)).encode()).hexdigest()
    prefix = f"verdict_{digest[:12]}"
    shards: dict[str, dict[str, Any]] = {}
    load: dict[str, dict[str, int]] = {}
    rules: dict[str, CompiledRule] = {}
    by_key: dict[tuple[str, str], str] = {}
    kinds: dict[str, set[str]] = defaultdict(set)
    current: dict[str, tuple[str, int]] = {}
    for r, definition, aliases, nodes in pieces:
        shard = _place(prefix, r.pack, nodes, shards, load, current)
        key = f"r{len(shards[shard])}"
        shards[shard][key] = definition
        for element, count in nodes.items():
            load[shard][element] = load[shard].get(element, 0) + count
        for e in [*aliases.values(), *[k for k in nodes if k.startswith("signal:")]]:
            kinds[shard].add(e.split(":", 1)[0])
        emits = [{"kind": "signal", "name": s.name, "score": literal(float(s.score), expr.Pos(1, 0)),
                  "by": r.id} for s in r.rule.then.signals()]
        rules[r.id] = CompiledRule(r.id, key, shard, level[r.id], pri, emits, aliases,
                                   expr.fact_paths(r.cond), nodes)
        by_key[(shard, key)] = r.id
    for shard_rules in shards.values():
        shard_rules[CLOSE_KEY] = dict(CLOSE_RULE)
    consumers: dict[str, list[str]] = defaultdict(list)
    for cr in rules.values():
        for sig, _ in expr.signal_refs(next(r.cond for r in book.rules if r.id == cr.id)):
            if cr.shard not in consumers[sig]:
                consumers[sig].append(cr.shard)
    phase_shards: dict[int, list[str]] = defaultdict(list)
    for cr in rules.values():
        if "phase__" in cr.aliases and cr.shard not in phase_shards[cr.stratum or 1]:
            phase_shards[cr.stratum or 1].append(cr.shard)
    phases = sorted(phase_shards.items())
    return Compiled(digest, shards, rules, by_key, dict(kinds), dict(consumers), phases, rc.bounded,
                    rc.synthesised)


def _place(prefix: str, pack: str, nodes: dict[str, int], shards: dict[str, dict[str, Any]],
           load: dict[str, dict[str, int]], current: dict[str, tuple[str, int]]) -> str:
    """The pack's current shard if this rule fits its node budget there, else a new shard."""
    name, n = current.get(pack, ("", 0))
    if not name or any(load[name].get(e, 0) + c > NODE_BUDGET for e, c in nodes.items()):
        n += 1
        name = f"{prefix}_{pack}" + (f"_{n}" if n > 1 else "")
        shards[name], load[name] = {}, {}
        current[pack] = (name, n)
    return name
