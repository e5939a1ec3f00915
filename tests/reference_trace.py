"""The trace renderer as it was before engine/render.py: the oracle the fast renderer is checked
against (tests/test_render_trace.py, tests/test_compile.py). Kept verbatim in the tests, not in the
product: it walks every condition with engine/expr.py's functions and builds a validated model per
comparison."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from engine import expr
from engine.compile import Compiled
from engine.derive import SymbolFacts
from engine.formulas import provenance_of
from engine.load import FactBase, LoadedRule
from engine.model import Comparison, Evaluation, FactUse, Fired, NotFired, WarningOut
from engine.resolve import SEVERITY_ORDER, signal_env
from engine.rete import Firing


def _comparisons(cond: expr.Node, env: expr.EvalEnv, seen: list[expr.CmpResult] | None = None
                 ) -> list[Comparison]:
    if seen is None:
        seen = []
        expr.truth(cond, env, seen)
    out = []
    for r in seen:
        out.append(Comparison(text=expr.describe_cmp(r), left=_jsonable(r.left), op=r.node.op,
                              right=_jsonable(r.right), holds=r.holds,
                              margin_pct=expr.margin_pct(r.node.op, r.left, r.right)))
    return out


def _jsonable(v: Any) -> Any:
    if isinstance(v, (expr.Interval, expr.Missing)):
        return expr.show(v)
    if isinstance(v, float):
        return round(v, 6)
    return v


def _as_stated(v: Any) -> Any:
    """A signal score as its rule wrote it: durable holds every number as a double (rete.encode_fact)."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _seen_value(fact: dict[str, Any], name: str) -> Any:
    if name in fact:
        return fact[name]
    bounds = {k.split("__", 1)[1]: v for k, v in fact.items() if k.startswith(name + "__")}
    sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
    return " and ".join(f"{sym[k]} {expr.fmt_num(v)}" for k, v in sorted(bounds.items())) or None


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


def blockers(cond: expr.Node, env: expr.EvalEnv, seen: list[expr.CmpResult] | None = None) -> list[str]:
    """The leaves of a condition that are not true: what kept the rule from firing, with margins.

    `seen` holds the comparisons of an evaluation of `cond` already made (reused, not redone)."""
    out: list[str] = []
    known = {id(r.node): r for r in seen or []}

    def cmp_result(node: expr.Cmp) -> expr.CmpResult:
        r = known.get(id(node))
        if r is None:
            found: list[expr.CmpResult] = []
            expr.truth(node, env, found)
            r = found[0]
        return r

    def leaf(node: expr.Node, negated: bool) -> None:
        if isinstance(node, expr.Not):
            leaf(node.item, not negated)
            return
        if isinstance(node, expr.BoolOp):
            for item in node.items:
                leaf(item, negated)
            return
        if isinstance(node, expr.Cmp):
            r = cmp_result(node)
            if r.holds is None:
                missing = expr.missing_paths(node, env)
                out.append(f"{expr.unparse(node)}: " + (f"missing {', '.join(missing)}" if missing
                                                        else expr.describe_cmp(r)))
            elif r.holds is negated:
                out.append(("not " if negated else "") + expr.describe_cmp(r))
            return
        t = expr.truth(node, env)
        if t is None:
            missing = expr.missing_paths(node, env)
            out.append(f"{expr.unparse(node)}: " + (f"missing {', '.join(missing)}" if missing else "undecided"))
        elif t is negated:
            if isinstance(node, expr.Truth) and isinstance(node.item, expr.SignalRef):
                out.append(f"signal {node.item.name} is {'present' if t else 'absent'}")
            else:
                out.append(f"{'not ' if negated else ''}{expr.unparse(node)} is {str(t).lower()}")

    leaf(cond, False)
    return out


def trace(firings: list[Firing], rules: dict[str, LoadedRule], compiled: Compiled, env: expr.EvalEnv,
          unavailable: dict[str, str] | None = None) -> tuple[list[Fired], list[NotFired], dict[str, bool | None]]:
    """Fired and not-fired rules with what they saw, and each condition's truth (one evaluation per rule).

    `unavailable`: why a derived fact has no value (its formula's reason and file:line:col), shown
    beside the rules it leaves not evaluable."""
    why = unavailable or {}
    truths: dict[str, bool | None] = {}
    seen_by_rule: dict[str, list[expr.CmpResult]] = {}
    for rid, lr in rules.items():
        seen_cmp: list[expr.CmpResult] = []
        truths[rid] = expr.truth(lr.cond, env, seen_cmp)
        seen_by_rule[rid] = seen_cmp
    fired: list[Fired] = []
    for f in firings:
        lr, cr = rules[f.rule], compiled.rules[f.rule]
        seen: dict[str, Any] = {}
        used: list[dict[str, Any]] = []
        for alias, kind in cr.aliases.items():
            fact = f.matched.get(alias)
            if fact is None:
                continue
            if kind.startswith("signal:"):
                used.append({"name": fact.get("name"), "score": _as_stated(fact.get("score")), "by": fact.get("by")})
            elif kind in ("stock", "sector", "commodity"):
                for path in cr.reads:
                    ns, _, name = path.partition(".")
                    if ns == kind:
                        seen[path] = _seen_value(fact, name)
                        stated = env.facts.get(path)
                        if stated is not None and isinstance(stated.value, dt.date):
                            seen[path] = stated.value  # durable matched it as a day number
                        elif stated is not None and type(stated.value) is int and seen[path] == stated.value:
                            seen[path] = stated.value  # durable holds every number as a double (rete.encode_fact)

        for path in lr.then_paths:  # facts its messages, entries and targets were computed from
            if path not in seen and path in env.facts:
                fv = env.facts[path]
                seen[path] = fv.value if fv.is_point else fv.describe()
        fired.append(Fired(rule=f.rule, title=lr.rule.title, pack=lr.pack, file=lr.file, line=lr.line,
                           salience=lr.rule.salience, facts=seen,
                           signals_used=sorted(used, key=lambda u: (str(u["name"]), str(u["by"]))),
                           comparisons=_comparisons(lr.cond, env, seen_by_rule[f.rule]), produced=_produced(lr)))
    done = {f.rule for f in firings}
    not_fired: list[NotFired] = []
    for rid, lr in rules.items():
        if rid in done:
            continue
        missing = [p if p not in why else f"{p} (not computed: {why[p]})" for p in lr.paths if p not in env.facts]
        t = truths[rid]
        status: Literal["false", "not_evaluable"] = \
            "not_evaluable" if (missing and t is not False) or t is None else "false"
        if status == "not_evaluable" and not missing:
            # no fact is absent: a value could not be computed (a zero divisor, no evaluation date), or a
            # bound leaves the comparison undecided
            missing = list(dict.fromkeys(
                reason for c in seen_by_rule[rid] if c.holds is None
                for reason in ([p for v in (c.left, c.right) if isinstance(v, expr.Missing) for p in v.paths]
                               or [expr.describe_cmp(c)])))
        # blocked_by names each failed or undecided part with its values and margin; the full list of
        # comparisons is kept for fired rules only (it is most of the cost of a trace).
        not_fired.append(NotFired(rule=rid, pack=lr.pack, file=lr.file, line=lr.line, status=status,
                                  missing=missing if status == "not_evaluable" else [],
                                  blocked_by=blockers(lr.cond, env, seen_by_rule[rid]),
                                  would_emit=[{"name": s.name, "score": s.score} for s in lr.rule.then.signals()]))
    not_fired.sort(key=lambda n: (n.status, n.file, n.line))
    return fired, not_fired, truths


def cross_check(firings: list[Firing], truths: dict[str, bool | None]) -> list[str]:
    """Where durable_rules and the explanation evaluator disagree: a trap we have not yet handled."""
    done = {f.rule for f in firings}
    out = []
    for rid, t in truths.items():
        if rid in done and t is not True:
            out.append(f"durable_rules fired {rid}, but its condition evaluates to "
                       f"{'unknown' if t is None else 'false'} on the same facts.")
        elif rid not in done and t is True:
            out.append(f"durable_rules did not fire {rid}, but its condition holds on the same facts.")
    return out


def fact_uses(facts: SymbolFacts, base: FactBase) -> list[FactUse]:
    out = []
    for path, c in sorted(facts.chosen.items()):
        spec = base.catalog.spec(path)
        src = base.sources.get(c.value.source)
        cite = f"{src.publisher} {src.ref}".strip() if src else c.value.source
        out.append(FactUse(path=path, value=c.value.value if c.value.is_point else c.value.describe(),
                           unit=c.value.unit or (spec.unit if spec else ""), as_of=c.value.as_of,
                           known_at=c.value.known, source=cite, derived=c.derived,
                           provenance=provenance_of(c.provenance)))
    return out


# ----------------------------------------------------------------------------------- renderers


def reference_evaluation(run: Any) -> Evaluation:
    """Run.evaluation() as it was: the rendered, cross-checked evaluation of a run."""
    from engine.pipeline import engine_version
    from engine.valuation import Valued

    ws, sf, res = run.workspace, run.facts, run.resolution
    stock = sf.stock
    env = expr.EvalEnv(sf.values(), signal_env(res.signals), sf.date)
    fired, not_fired, truths = trace(run.firings, ws.rules, ws.compiled, env, sf.unavailable)
    warnings = list(res.warnings)
    for msg in cross_check(run.firings, truths):
        warnings.append(WarningOut(rule="engine.cross-check", severity="high", message=msg))
    warnings.sort(key=lambda w: (SEVERITY_ORDER[w.severity], w.rule))
    primary = next((v for v in res.valuations if isinstance(v, Valued)), None)
    return Evaluation(
        symbol=stock.file.symbol, name=stock.file.name, sector=stock.file.sector, as_of=sf.as_of,
        rating=res.rating.name, score=res.score, rating_info=res.rating, target=res.target,
        entries=res.entries, warnings=warnings, coverage=res.coverage, fragility=run.fragility(),
        valuations=[v.out(v is primary) for v in res.valuations if isinstance(v, Valued)],
        signals=run._signals_out(), fired=fired,
        not_fired=not_fired, facts=fact_uses(sf, ws.facts), fact_checks=sf.checks, run_id=run.run_id,
        ruleset_hash=ws.compiled.digest, facts_hash=sf.digest(ws.facts.sources), engine_version=engine_version(),
        disclaimer=ws.book.policy.disclaimer,
    )
