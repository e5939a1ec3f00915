"""Stage 2b, derived facts: the formulas of the fact catalog, checked, ordered and evaluated.

A catalog entry with a `formula:` is a fact that is computed, never typed in. Its kind follows from
what the formula reads:
- prices: price series and constants only (`avg(volume, 20) / avg(volume, 60)`), computed once over
  the symbol's whole series (engine/series.py) and read on the evaluation date's bar;
- facts: other facts (`stock.pe_ttm / stock.earnings_growth_low_pct`), evaluated on the values the
  conflict policy chose on the date (after overrides, in what-if and rule tests);
- cross: `percentile()` or `rank()` of a fact within the stock's sector or the universe on the date,
  from every symbol's value of it on that date (gathered once per date, see CrossSections).
Formulas are parsed by engine/expr.py (stdlib ast, never evaluated by Python) and reported with
file:line:col. Nothing here raises on data: a value that cannot be computed (a missing input, a zero
divisor, a window longer than the history) is left out, with the reason and where the formula is.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import expr, series
from .errors import Location, Problem, did_you_mean
from .model import Catalog, FactCheck, FactValue, Policy, Provenance, ProvenanceInput, TechnicalParams

if TYPE_CHECKING:
    from .derive import SymbolFacts
    from .load import FactBase, StockFacts

DERIVED_SOURCE = "prices"  # values computed from the price history (as the built-in technicals always were)
FORMULA_SOURCE = "formula"  # values computed from other facts
CROSS = ("percentile", "rank")
SCOPES = ("sector", "universe")
KINDS = ("const", "prices", "facts", "cross")
GRAMMAR = expr.Grammar(words=True, functions=frozenset([*series.FUNCTIONS, *CROSS]))
INDICATOR_COLUMNS = {"macd": ("close",), "kdj": ("high", "low", "close"), "rsi": ("close",), "boll": ("close",)}


@dataclass(frozen=True)
class Formula:
    """One checked declaration."""

    path: str
    text: str
    node: expr.Node
    type: str
    kind: str  # prices | facts | cross
    reads: tuple[str, ...]  # fact paths the formula reads
    where: Location
    warmup: int = 0  # prices: bars before the first value
    recursive: bool = False  # prices: reads an EMA/SMA-seeded function
    kinds: dict[int, str] = field(default_factory=dict, compare=False, repr=False)  # id(node) -> kind


@dataclass
class Formulas:
    """The checked formulas, each after every derived fact it reads."""

    items: dict[str, Formula] = field(default_factory=dict)

    def prices(self) -> list[Formula]:
        return [f for f in self.items.values() if f.kind == "prices"]

    def later(self) -> list[Formula]:
        """Formulas over facts and cross-sections: evaluated once the date's facts are chosen."""
        return [f for f in self.items.values() if f.kind != "prices"]

    def series_node(self, path: str) -> expr.Node | None:
        f = self.items.get(path)
        return f.node if f is not None and f.kind == "prices" else None

    def closure(self, paths: Iterable[str]) -> frozenset[str]:
        """The paths and everything their formulas read, transitively."""
        out: set[str] = set()
        todo = list(paths)
        while todo:
            p = todo.pop()
            if p in out:
                continue
            out.add(p)
            f = self.items.get(p)
            if f is not None:
                todo.extend(f.reads)
        return frozenset(out)

    def merged(self, other: Formulas) -> Formulas:
        return Formulas({**self.items, **other.items})


class _Failed(Exception):
    """A formula read another one that has an error (reported there)."""


# ----------------------------------------------------------------------------------------- check


def _rank(kind: str) -> int:
    return KINDS.index(kind)


def _top(*kinds: str) -> str:
    return max(kinds, key=_rank) if kinds else "const"


class _Checker:
    def __init__(self, catalog: Catalog, where: Callable[[str], tuple[Location, int]] | None) -> None:
        self.catalog = catalog
        self.where = where or (lambda path: (Location(), 0))
        self.env = expr.TypeEnv(catalog, set(), allow_signals=False)
        self.specs = {p: s for p in catalog.paths() if (s := catalog.spec(p)) is not None and s.formula is not None}
        self.done: dict[str, Formula | None] = {}
        self.stack: list[str] = []
        self.problems: list[Problem] = []
        self.series_args = 0  # > 0 while checking the series arguments of a price-history function

    def run(self) -> Formulas:
        for path in self.specs:
            self.visit(path)
        return Formulas({p: f for p, f in self.done.items() if f is not None})

    def visit(self, path: str) -> Formula | None:
        if path in self.done:
            return self.done[path]
        spec = self.specs[path]
        text = spec.formula or ""
        loc, offset = self.where(path)
        self.stack.append(path)
        result: Formula | None = None
        try:
            node = expr.parse(text, GRAMMAR)
            reads: list[str] = []
            kinds: dict[int, str] = {}
            t, kind, warmup, recursive = self.infer(node, reads, kinds)
            if t != spec.type:
                raise expr.ExprError(node.pos, "type", f"the formula gives a {t}, but the catalog declares "
                                                       f"{path} as {spec.type}.", f"Declare it with type: {t}.")
            if kind == "const":
                raise expr.ExprError(node.pos, "constant", "the formula reads no fact and no price series.",
                                     "Write it over facts (stock.x), price series (close, volume, ...) or both.")
            result = Formula(path, text, node, t, kind, tuple(dict.fromkeys(reads)), loc.shifted(offset)
                             if loc.line else loc, warmup, recursive, kinds)
        except expr.ExprError as exc:
            p = expr.to_problem(exc, loc, offset)
            self.problems.append(Problem(p.loc, p.code, f"in the formula of {path}: {p.message}", p.hint,
                                         input=text))
        except _Failed:
            pass
        finally:
            self.stack.pop()
        self.done[path] = result
        return result

    def infer(self, node: expr.Node, reads: list[str], kinds: dict[int, str]) -> tuple[str, str, int, bool]:
        t, kind, warmup, recursive = self._infer(node, reads, kinds)
        kinds[id(node)] = kind
        return t, kind, warmup, recursive

    def _infer(self, node: expr.Node, reads: list[str], kinds: dict[int, str]
               ) -> tuple[str, str, int, bool]:
        sub = self.infer
        if isinstance(node, expr.Const):
            return expr.const_type(node.value), "const", 0, False
        if isinstance(node, expr.Word):
            if node.name in series.SERIES:
                return "number", "prices", 0, False
            if node.name in SCOPES:
                raise expr.ExprError(node.pos, "scope-here", f"`{node.name}` names a group of symbols.",
                                     f"Use it as the second argument of percentile(stock.x, {node.name}) or "
                                     f"rank(stock.x, {node.name}).")
            raise expr.ExprError(node.pos, "unknown-series", f"`{node.name}` is not a price series or a fact path.",
                                 did_you_mean(node.name, list(series.SERIES))
                                 or f"Price series: {', '.join(series.SERIES)}; facts are written stock.NAME.")
        if isinstance(node, expr.FactRef):
            t = expr.type_of(node, self.env)  # an unknown path is reported with a did-you-mean
            reads.append(node.path)
            if node.path in self.specs:
                if node.path in self.stack:
                    cycle = [*self.stack[self.stack.index(node.path):], node.path]
                    raise expr.ExprError(node.pos, "cycle", "derived facts read each other in a cycle: "
                                         + " -> ".join(cycle) + ".",
                                         "A derived fact cannot depend on itself, directly or through others.")
                dep = self.visit(node.path)
                if dep is None:
                    raise _Failed
                if dep.kind == "prices" and self.series_args:  # ema(stock.macd_dif, 9): its whole series
                    return t, "prices", dep.warmup, dep.recursive
                return t, "facts" if dep.kind == "prices" else dep.kind, 0, False  # its value on the date, as
                # chosen (a source may state it, a what-if may set it), like any fact's
            return t, "facts", 0, False
        if isinstance(node, expr.SignalRef):
            raise expr.ExprError(node.pos, "signal-in-formula", "a derived fact cannot read signals.",
                                 "Signals are what rules conclude; formulas read facts and price series.")
        if isinstance(node, expr.Neg):
            t, k, w, r = sub(node.operand, reads, kinds)
            self._want(node.operand, t, "number", "arithmetic")
            return "number", k, w, r
        if isinstance(node, expr.Arith):
            lt, lk, lw, lr = sub(node.left, reads, kinds)
            rt, rk, rw, rr = sub(node.right, reads, kinds)
            if not (node.op == "-" and lt == rt == "date"):
                self._want(node.left, lt, "number", "arithmetic")
                self._want(node.right, rt, "number", "arithmetic")
            return "number", _top(lk, rk), max(lw, rw), lr or rr
        if isinstance(node, (expr.Cmp, expr.BoolOp, expr.Not, expr.Truth)):
            return self._logic(node, reads, kinds)
        if isinstance(node, expr.Call):
            if node.fn in series.FUNCTIONS:
                return self._series_call(node, series.FUNCTIONS[node.fn], reads, kinds)
            if node.fn in CROSS:
                return self._cross_call(node, reads, kinds)
            return self._plain_call(node, reads, kinds)
        raise expr.ExprError(node.pos, "unsupported", f"`{expr.unparse(node)}` cannot be used in a formula.")

    def _want(self, node: expr.Node, t: str, want: str, what: str) -> None:
        if t != want:
            raise expr.ExprError(node.pos, "type", f"{what} needs {want}s, but `{expr.unparse(node)}` is {t}.")

    def _logic(self, node: expr.Node, reads: list[str], kinds: dict[int, str]) -> tuple[str, str, int, bool]:
        infos = [self.infer(c, reads, kinds) for c in expr.children(node)]
        if isinstance(node, expr.Cmp):
            (lt, *_), (rt, *_) = infos
            if lt != rt or (node.op not in ("==", "!=") and lt not in ("number", "date")):
                raise expr.ExprError(node.pos, "type", f"`{expr.unparse(node)}` compares {lt} with {rt}.",
                                     "Order comparisons need numbers (or dates) on both sides.")
        else:
            for c, info in zip(expr.children(node), infos, strict=True):
                self._want(c, info[0], "bool", "`and`, `or` and `not`")
        return "bool", _top(*(i[1] for i in infos)), max(i[2] for i in infos), any(i[3] for i in infos)

    def _plain_call(self, node: expr.Call, reads: list[str], kinds: dict[int, str]) -> tuple[str, str, int, bool]:
        if node.fn == "age":
            if len(node.args) != 1 or not isinstance(node.args[0], expr.FactRef):
                raise expr.ExprError(node.pos, "type", "age() takes one fact path, e.g. age(stock.pe_ttm).")
            self.infer(node.args[0], reads, kinds)
            return "number", "facts", 0, False
        want = "date" if node.fn == "days_since" else "number"
        infos = [self.infer(a, reads, kinds) for a in node.args]
        for a, info in zip(node.args, infos, strict=True):
            self._want(a, info[0], want, f"`{node.fn}`")
        kind = _top(*(i[1] for i in infos), "facts" if node.fn == "days_since" else "const")
        return "number", kind, max((i[2] for i in infos), default=0), any(i[3] for i in infos)

    def _series_call(self, node: expr.Call, fn: series.Function, reads: list[str], kinds: dict[int, str]
                     ) -> tuple[str, str, int, bool]:
        args = node.args
        required = fn.inputs + sum(1 for p in fn.params if p.default is None)
        if not required <= len(args) <= fn.inputs + len(fn.params):
            raise expr.ExprError(node.pos, "arity", f"`{fn.name}` takes {_signature(fn)}, not {len(args)} "
                                                    "argument(s).", f"Example: {_example(fn)}.")
        warmup, recursive = 0, fn.recursive
        for a in args[:fn.inputs]:
            self.series_args += 1
            try:
                t, k, w, r = self.infer(a, reads, kinds)
            finally:
                self.series_args -= 1
            if k != "prices" or t != "number":
                what = f"{expr.unparse(a)} is a fact with one value per date, not a price series" \
                    if k == "facts" else f"{expr.unparse(a)} is not a price series"
                raise expr.ExprError(a.pos, "not-a-series", f"`{fn.name}` reads a price series: {what}.",
                                     f"Give it one of {', '.join(series.SERIES)}, a formula of them, or a fact "
                                     "declared by such a formula.")
            warmup, recursive = max(warmup, w), recursive or r
        params: list[float] = []
        for a, p in zip(args[fn.inputs:], fn.params, strict=False):
            value = a.value if isinstance(a, expr.Const) else None
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise expr.ExprError(a.pos, "parameter", f"the parameter `{p.name}` of `{fn.name}` must be a "
                                                         "number written in the formula.", f"Example: {_example(fn)}.")
            if (p.integer and not float(value).is_integer()) or not p.low <= value <= p.high:
                kind = "a whole number" if p.integer else "a number"
                raise expr.ExprError(a.pos, "parameter", f"the parameter `{p.name}` of `{fn.name}` must be {kind} "
                                                         f"from {p.low:g} to {p.high:g}, not {value:g}.")
            params.append(float(value))
        full = series.full_params(fn, params)
        if fn.name.startswith("macd") and full[0] >= full[1]:
            raise expr.ExprError(node.pos, "parameter", "MACD's fast EMA must be shorter than its slow one.",
                                 "Example: macd_dif(12, 26, 9).")
        if fn.name == "sma" and full[1] > full[0]:
            raise expr.ExprError(node.pos, "parameter", "sma(x, n, m) needs m <= n (the weight of the new value "
                                                        "is m/n).", "Example: sma(close, 3, 1).")
        kinds.update((id(a), "const") for a in args[fn.inputs:])
        return fn.result, "prices", warmup + fn.warmup(full), recursive

    def _cross_call(self, node: expr.Call, reads: list[str], kinds: dict[int, str]) -> tuple[str, str, int, bool]:
        args = node.args
        if len(args) != 2 or not isinstance(args[0], expr.FactRef) or not isinstance(args[1], expr.Word) \
                or args[1].name not in SCOPES:
            raise expr.ExprError(node.pos, "arity", f"`{node.fn}` takes a fact path and a scope: "
                                                    f"{node.fn}(stock.x, sector) or {node.fn}(stock.x, universe).")
        t, k, _, _ = self.infer(args[0], reads, kinds)
        self._want(args[0], t, "number", f"`{node.fn}`")
        if k == "cross":
            raise expr.ExprError(args[0].pos, "cross-of-cross", f"{expr.unparse(args[0])} is itself a "
                                 "cross-sectional fact.", "Rank a fact of the stock, not another rank.")
        if not args[0].path.startswith("stock."):
            raise expr.ExprError(args[0].pos, "type", f"`{node.fn}` compares stocks: rank a stock.* fact.")
        kinds[id(args[1])] = "const"
        return "number", "cross", 0, False


def _signature(fn: series.Function) -> str:
    ins = ["series"] if fn.inputs == 1 else ["series_a", "series_b"] if fn.inputs == 2 else []
    ps = [p.name if p.default is None else f"{p.name}={p.default:g}" for p in fn.params]
    return f"{fn.name}({', '.join(ins + ps)})"


def _example(fn: series.Function) -> str:
    ins = ["close"] if fn.inputs == 1 else ["macd_dif(12, 26, 9)", "macd_dea(12, 26, 9)"] if fn.inputs == 2 else []
    ps = [f"{p.default:g}" if p.default is not None else ("20" if p.name != "m" else "1") for p in fn.params]
    return f"{fn.name}({', '.join(ins + ps)})"


def check(catalog: Catalog, where: Callable[[str], tuple[Location, int]] | None = None
          ) -> tuple[Formulas, list[Problem]]:
    """Parse and check every formula of the catalog: (the good ones in dependency order, the problems).

    `where(path)` gives the position of a formula's text and the columns before its first character."""
    checker = _Checker(catalog, where)
    return checker.run(), checker.problems


def builtin_formulas(p: TechnicalParams) -> dict[str, str]:
    """The formulas of the built-in technical facts, from the policy's parameters: what verdict computed
    before formulas existed, for catalogs that declare these facts without one (and audit replays of
    runs made then). The bundled catalog writes each formula out instead."""
    f, sl, sig = p.macd
    kn, m1, m2 = p.kdj
    dif, dea, kdj = f"macd_dif({f}, {sl}, {sig})", f"macd_dea({f}, {sl}, {sig})", f"{kn}, {m1}, {m2}"
    out = {"close": "close", "macd_dif": dif, "macd_dea": dea, "macd_bar": f"macd_bar({f}, {sl}, {sig})",
           "macd_dif_pct": f"{dif} / close * 100",
           "macd_near_zero_axis": f"abs({dif}) / close * 100 < {p.near_zero_axis_pct:g} and "
                                  f"abs({dea}) / close * 100 < {p.near_zero_axis_pct:g}",
           "macd_golden_cross": f"cross({dif}, {dea})", "macd_death_cross": f"cross({dea}, {dif})",
           "kdj_k": f"kdj_k({kdj})", "kdj_d": f"kdj_d({kdj})", "kdj_j": f"kdj_j({kdj})",
           "kdj_j_max_recent": f"highest(kdj_j({kdj}), {p.recent_days})",
           "boll_mid": f"boll_mid({p.boll_n})", "boll_upper": f"boll_upper({p.boll_n}, {p.boll_k:g}, {p.boll_ddof})",
           "boll_lower": f"boll_lower({p.boll_n}, {p.boll_k:g}, {p.boll_ddof})",
           "high_52w": "highest_days(high, 365)", "low_52w": "lowest_days(low, 365)",
           "range_low": f"lowest(close, {p.range_days})", "range_high": f"highest(close, {p.range_days})",
           "resistance": f"highest(close, {p.level_days})", "support": f"lowest(close, {p.level_days})"}
    out.update({f"rsi_{n}": f"rsi({n})" for n in p.rsi})
    out.update({f"ma_{n}": f"ma(close, {n})" for n in p.ma})
    return {f"stock.{name}": text for name, text in out.items()}


POLICY_TECHNICALS = Location("rules/policy.yaml")  # where built-in formulas take their parameters


def with_builtins(formulas: Formulas, catalog: Catalog, params: TechnicalParams | None,
                  where: Location = POLICY_TECHNICALS) -> Formulas:
    """`formulas` plus the built-in technical facts the catalog declares without a formula."""
    texts = {path: text for path, text in builtin_formulas(params or TechnicalParams()).items()
             if (spec := catalog.spec(path)) is not None and spec.formula is None and spec.type in ("number", "bool")}
    if not texts:
        return formulas
    data = catalog.model_dump()
    for path, text in texts.items():
        ns, name = path.split(".", 1)
        data["namespaces"][ns][name]["formula"] = text
    builtin, _ = check(Catalog.model_validate(data), lambda path: (where, 0))
    return Formulas({**{p: f for p, f in builtin.items.items() if p in texts}, **formulas.items})


def windows_beyond(formulas: Formulas, longest: int) -> list[Problem]:
    """Price formulas needing more bars than the longest loaded history: never computable here."""
    return [Problem(f.where, "window-beyond-history",
                    f"{f.path} = {f.text} needs {f.warmup + 1} bars of price history, and the longest loaded "
                    f"history has {longest}: it has no value for any symbol.",
                    "Shorten the window, or load more history.", severity="warning")
            for f in formulas.prices() if f.warmup + 1 > longest]


def unused_technicals(params: TechnicalParams, catalog: Catalog) -> list[str]:
    """The `technicals:` parameters a policy sets that no fact uses: every built-in technical fact of the
    catalog has its own formula, whose parameters apply."""
    given = sorted(params.model_fields_set - {"min_bars"})
    if not given:
        return []
    paths = [p for p in builtin_formulas(params) if catalog.spec(p) is not None]
    return given if all(s.formula is not None for p in paths if (s := catalog.spec(p)) is not None) else []


_BY_CATALOG: dict[int, tuple[Catalog, Formulas]] = {}


def register(catalog: Catalog, formulas: Formulas) -> None:
    """Remember the checked (and located) formulas of a loaded catalog."""
    if len(_BY_CATALOG) > 32:
        _BY_CATALOG.clear()
    _BY_CATALOG[id(catalog)] = (catalog, formulas)


def of_catalog(catalog: Catalog) -> Formulas:
    hit = _BY_CATALOG.get(id(catalog))
    if hit is not None and hit[0] is catalog:
        return hit[1]
    formulas, _ = check(catalog)
    register(catalog, formulas)
    return formulas


# ----------------------------------------------------------------------------------------- evaluate


@dataclass(frozen=True)
class Derived:
    """A computed value of one fact, with its provenance (text for the tree, data for JSON)."""

    path: str
    value: FactValue
    how: str
    provenance: Provenance | PriceProvenance | None  # None when gathered without it


def _num_text(v: Any) -> str:
    if isinstance(v, float) and not isinstance(v, bool):
        return f"{v:,.4f}".rstrip("0").rstrip(".") if abs(v) < 1e15 else expr.fmt_num(v)
    return expr.show(v)


def _columns(node: expr.Node) -> list[str]:
    """The price columns a formula reads, directly or through an indicator."""
    out: dict[str, None] = {}
    for n in expr.walk(node):
        if isinstance(n, expr.Word) and n.name in series.SERIES:
            out[n.name] = None
        elif isinstance(n, expr.Call) and n.fn in series.FUNCTIONS and series.FUNCTIONS[n.fn].inputs == 0:
            out.update(dict.fromkeys(INDICATOR_COLUMNS[n.fn.split("_")[0]]))
    return list(out)


def _calls(node: expr.Node) -> list[expr.Call]:
    return [n for n in expr.walk(node) if isinstance(n, expr.Call) and n.fn in series.FUNCTIONS]


def _parameters(node: expr.Node) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for call in _calls(node):
        fn = series.FUNCTIONS[call.fn]
        given = [float(a.value) for a in call.args[fn.inputs:] if isinstance(a, expr.Const)]
        full = series.full_params(fn, given)
        names = [p.name for p in fn.params] + (["k", "ddof"] if fn.name == "boll_mid" else [])
        out[expr.unparse(call)] = dict(zip(names, full, strict=False))
    return out


def _parts(node: expr.Node) -> list[expr.Node]:
    """The largest named pieces of a price formula (calls, series, referenced facts): what a person
    checks it against."""
    if isinstance(node, (expr.Call, expr.Word, expr.FactRef)) and not (
            isinstance(node, expr.Call) and node.fn not in series.FUNCTIONS):
        return [node]
    return [p for c in expr.children(node) for p in _parts(c)]


def describe_node(node: expr.Node, formulas: Formulas) -> str:
    if isinstance(node, expr.Word):
        return f"last {node.name}" if node.name != "close" else "last close"
    if isinstance(node, expr.FactRef):
        f = formulas.items.get(node.path)
        return f"{node.path} = {f.text}" if f else node.path
    if isinstance(node, expr.Call) and node.fn in series.FUNCTIONS:
        fn = series.FUNCTIONS[node.fn]
        ins = [expr.unparse(a) for a in node.args[:fn.inputs]] + ["", ""]
        given = [float(a.value) for a in node.args[fn.inputs:] if isinstance(a, expr.Const)]
        return fn.describe(series.full_params(fn, given)).format(x=ins[0], y=ins[1])
    return expr.unparse(node)


@dataclass(frozen=True)
class _PriceStatic:
    formula: Formula
    single: bool  # one function or series: its description says it all
    note: str
    prefix: str  # the start of the provenance text
    parts: list[tuple[expr.Node, str, str]]  # (node, text, description) of a compound formula's named parts
    columns: list[str]
    parameters: dict[str, dict[str, float]]
    template: FactValue  # copied with each date's value


class PriceProvenance:
    """The provenance of a price formula's value on one bar, built when shown (`get()`): a backtest reads
    hundreds of thousands of values and shows none of their provenance."""

    __slots__ = ("_built", "idx", "ss", "static")

    def __init__(self, static: _PriceStatic, ss: series.SymbolSeries, idx: int) -> None:
        self.static, self.ss, self.idx = static, ss, idx
        self._built: Provenance | None = None

    def get(self) -> Provenance:
        if self._built is None:
            st, ss, i = self.static, self.ss, self.idx
            last, s = ss.dates[i], ss.series
            sources = ", ".join(s.sources)
            inputs = [ProvenanceInput(name=text, value=ss.at(p, i), source=DERIVED_SOURCE, as_of=last, note=what)
                      for p, text, what in st.parts]
            inputs += [ProvenanceInput(name=c, value=ss.column(c)[i], source=sources, as_of=last,
                                       note=f"{c} of the last bar") for c in st.columns]
            self._built = Provenance(formula=st.formula.text, defined_at=str(st.formula.where), kind="prices",
                                     parameters=st.parameters, inputs=inputs, bars=i + 1, last_bar=last,
                                     basis=s.basis)
        return self._built


def provenance_of(p: Provenance | PriceProvenance | None) -> Provenance | None:
    return p.get() if isinstance(p, PriceProvenance) else p


class Deriver:
    """Evaluates the formulas for one fact base: a workspace's, with its compute-once caches.

    `price_facts(stock, day)` gives every price-history fact of a symbol on a date from the symbol's
    series computed once (`symbol_series`); `apply(sf)` adds the formulas over facts and
    cross-sections to a symbol's resolved facts. A backtest calls `ws.symbol_facts(symbol, as_of=d)`
    for each date, or `price_facts` directly, and pays for each formula once per symbol.
    """

    def __init__(self, formulas: Formulas, base: FactBase, policy: Policy | None = None,
                 max_symbols: int = 16) -> None:
        self.formulas = formulas
        self.base = base
        self.policy = policy
        self.cache = series.SeriesCache(formulas.series_node, max_symbols)
        self.cross = CrossSections(self)
        self._prices = formulas.prices()
        self._statics: dict[str, _PriceStatic] = {}

    @property
    def min_bars(self) -> int:
        return self.policy.technicals.min_bars if self.policy is not None else 120

    def symbol_series(self, stock: StockFacts) -> series.SymbolSeries | None:
        s = stock.series
        return self.cache.get(s) if s is not None and s.bars else None

    # ---------------------------------------------------------------- prices

    def price_facts(self, stock: StockFacts, day: dt.date | None, wanted: frozenset[str] | None = None,
                    provenance: bool = True, one_date: bool = True) -> tuple[list[Derived], list[str], dict[str, str]]:
        """The price-history facts of `stock` on `day` (its last bar on or before it), warnings about the
        history, and why each formula that has no value has none. A backtest calls this for every date:
        each formula is a list index here, its provenance is built only if shown (PriceProvenance). Without
        `provenance` (values gathered for a rating or a cross-section, never shown) each fact's text is its
        formula and no provenance is kept. `one_date`: the symbol is read on this date alone (an
        evaluation, a screen), so each formula is worked out on its bar (SymbolSeries.at); a caller reading
        it on many dates (a backtest, a cross-section) passes False and each formula is computed once over
        the whole series, then indexed."""
        todo = self._prices if wanted is None else [f for f in self._prices if f.path in wanted]
        if not todo:
            return [], [], {}
        ss = self.symbol_series(stock)
        idx = ss.index(day) if ss is not None else None
        if ss is None or idx is None:
            why = "no price history" if ss is None else f"no price bar on or before {day}"
            return [], [], {f.path: f"{why} [{f.where}]" for f in todo}
        s = ss.series
        n, last = idx + 1, ss.dates[idx]
        warnings = []
        if n < self.min_bars and any(f.recursive for f in todo):
            warnings.append(f"{s.symbol}: only {n} bars of price history before {last}; EMA- and SMA-based "
                            f"indicators (MACD, KDJ, RSI) need at least {self.min_bars} to be reliable.")
        basis = s.basis
        on = f", on {n} {basis} daily bars to {last} ({', '.join(s.sources)})"
        out: list[Derived] = []
        unavailable: dict[str, str] = {}
        read = ss.at if one_date else ss.value_at
        for f in todo:
            st = self._static(f)
            v = read(f.node, idx)
            if v is None:
                unavailable[f.path] = self._why_none(f, ss, idx)
                continue
            fv = st.template.model_copy(update={"value": v if isinstance(v, bool) else round(float(v), 6),
                                                "as_of": last, "basis": basis})  # half model_construct's cost
            if not provenance:
                out.append(Derived(f.path, fv, f.text, None))
                continue
            how = st.prefix + on if st.single else st.prefix + "; ".join(
                f"{text} = {_num_text(read(p, idx))}" for p, text, _ in st.parts) + on
            out.append(Derived(f.path, fv, how, PriceProvenance(st, ss, idx)))
        return out, warnings, unavailable

    def _static(self, f: Formula) -> _PriceStatic:
        """What a price formula's provenance says on every date, worked out once."""
        hit = self._statics.get(f.path)
        if hit is None:
            parts = list({expr.unparse(p): p for p in _parts(f.node)}.values())
            single = len(parts) == 1 and parts[0] == f.node
            note = describe_node(f.node, self.formulas) if single else f.text
            spec = self.base.catalog.spec(f.path)
            hit = self._statics[f.path] = _PriceStatic(
                f, single, note, f"{f.text}: {note}" if single else f"{f.text}: ",
                [(p, expr.unparse(p), describe_node(p, self.formulas)) for p in ([] if single else parts)],
                _columns(f.node), _parameters(f.node),
                FactValue.model_construct(value=0.0, as_of=dt.date(1970, 1, 1), source=DERIVED_SOURCE,
                                          unit=spec.unit if spec else "", note=note))
        return hit

    def _why_none(self, f: Formula, ss: series.SymbolSeries, idx: int) -> str:
        last = ss.dates[idx]
        if idx < f.warmup:
            why = f"{f.text} needs {f.warmup + 1} bars of price history; there are {idx + 1} up to {last}"
        elif "amount" in _columns(f.node) and ss.column("amount")[idx] is None:
            why = f"the price history has no amount (turnover) on {last}"
        else:
            why = f"{f.text} has no value on {last} (a division by zero, or an input without a value)"
        return f"{why} [{f.where}]"

    # ---------------------------------------------------------------- facts and cross-sections

    def apply(self, sf: SymbolFacts, wanted: frozenset[str] | None = None, cross: bool = True,
              skip: frozenset[str] = frozenset()) -> None:
        """Add the formulas over facts (and, with `cross`, the cross-sectional ones) to `sf`, in order."""
        from .derive import Chosen, Conflict, choose, disagree

        policy = self.policy.conflicts if self.policy is not None else None
        for f in self.formulas.later():
            if f.path in skip or (wanted is not None and f.path not in wanted) or (f.kind == "cross" and not cross):
                continue
            ev = _Evaluation(self, f, sf)
            value = ev.value(f.node)
            if isinstance(value, (expr.Missing, expr.Interval)):
                sf.unavailable[f.path] = ev.reason(value)
                continue
            if isinstance(value, float):
                value = round(value, 6)
            spec = self.base.catalog.spec(f.path)
            as_of = min((i.as_of for i in ev.inputs if i.as_of is not None and i.source != DERIVED_SOURCE),
                        default=None) or sf.date or dt.date(1970, 1, 1)
            known = max(ev.known, default=None)  # known once its last input was
            fv = FactValue.model_construct(value=value, as_of=as_of, source=FORMULA_SOURCE,
                                           known_at=known if known is not None and known > as_of else None,
                                           unit=spec.unit if spec else "", note=f.text)
            how = f"{f.text}: " + ", ".join(
                f"{i.name} {_num_text(i.value)}" + (f" [{i.source}, {i.as_of}]" if i.source else "")
                + (f" ({i.note})" if i.note else "") for i in ev.inputs)
            prov = Provenance(formula=f.text, defined_at=str(f.where), kind="facts" if f.kind == "facts" else "cross",
                              parameters=_parameters(f.node), inputs=ev.inputs)
            stated = sf.chosen.get(f.path)
            if stated is None or stated.derived == "override":
                if stated is None:
                    sf.chosen[f.path] = Chosen(f.path, fv, (), False, how, prov)
                continue
            values = [fv, stated.value, *stated.alternatives]
            cpolicy = policy or _default_conflicts()
            c, conflict = choose(f.path, values, cpolicy, self.base.sources, spec.label if spec else f.path)
            if c.value is fv:
                c = c._replace(derived=how, provenance=prov)
            sf.chosen[f.path] = c
            if conflict:
                sf.conflicts.append(Conflict(conflict.path, conflict.chosen, conflict.others, conflict.message))
            sf.checks.append(FactCheck(
                path=f.path, derived=value, how=how,
                agree=not any(disagree(fv, s, cpolicy.tolerance_pct) for s in values[1:]),
                stated=[{"value": s.value if s.is_point else s.describe(), "source": s.source,
                         "as_of": s.as_of.isoformat()} for s in values[1:]]))


def _default_conflicts() -> Any:
    from .model import ConflictPolicy

    return ConflictPolicy()


class _Evaluation:
    """One formula over facts on one symbol's resolved facts; records the inputs it read."""

    def __init__(self, deriver: Deriver, formula: Formula, sf: SymbolFacts) -> None:
        self.d, self.f, self.sf = deriver, formula, sf
        self.inputs: list[ProvenanceInput] = []
        self.known: list[dt.date] = []  # when each fact it read became known
        self._ss: series.SymbolSeries | None = None
        self._idx: int | None = None

    def reason(self, v: Any) -> str:
        if isinstance(v, expr.Interval):
            why = f"an input is known only as a bound ({v.text()})"
        else:
            parts = [f"missing {p}" if self.d.base.catalog.spec(p) is not None else p for p in v.paths]
            why = "; ".join(dict.fromkeys(parts))
        return f"{why} [{self.f.where}]"

    def _record(self, name: str, value: Any, source: str = "", as_of: dt.date | None = None, note: str = "") -> None:
        if not any(i.name == name for i in self.inputs):
            self.inputs.append(ProvenanceInput(name=name, value=value, source=source, as_of=as_of, note=note))

    def value(self, node: expr.Node) -> Any:
        kind = self.f.kinds.get(id(node), "facts")
        if isinstance(node, expr.Const):
            return expr.promote_int(node.value)
        if isinstance(node, expr.FactRef):
            c = self.sf.chosen.get(node.path)
            if c is None:
                return expr.Missing([self._missing(node.path)])
            fv = c.value
            self.known.append(fv.known)
            self._record(node.path, fv.value if fv.is_point else fv.describe(), fv.source, fv.as_of)
            return expr.promote_int(fv.value) if fv.is_point else expr.Interval.of(fv)
        if kind == "prices":
            return self._price_part(node)
        if isinstance(node, expr.Call) and node.fn in CROSS:
            return self._cross(node)
        if isinstance(node, expr.Call) and node.fn == "age":
            path = expr.unparse(node.args[0])
            c = self.sf.chosen.get(path)
            if c is None:
                return expr.Missing([self._missing(path)])
            self._record(path, c.value.value if c.value.is_point else c.value.describe(), c.value.source,
                         c.value.as_of)
            return expr.value_of(node, expr.EvalEnv({path: c.value}, {}, self.sf.date))
        if isinstance(node, (expr.Arith, expr.Neg, expr.Call)):
            subs = [self.value(c) for c in expr.children(node)]
            missing = [p for s in subs if isinstance(s, expr.Missing) for p in s.paths]
            if missing:
                return expr.Missing(missing)
            bounded = [s for s in subs if isinstance(s, expr.Interval)]
            if bounded:
                return bounded[0]
            return expr.apply_arith(node, subs, self.sf.date)
        if isinstance(node, expr.Cmp):
            a, b = self.value(node.left), self.value(node.right)
            for side in (a, b):
                if isinstance(side, expr.Missing):
                    return side
            r = expr.compare(node.op, a, b)
            return expr.Missing([f"{expr.unparse(node)} is undecided"]) if r is None else r
        if isinstance(node, (expr.BoolOp, expr.Not)):
            items = [self.value(c) for c in expr.children(node)]
            truths = [None if isinstance(v, (expr.Missing, expr.Interval)) else bool(v) for v in items]
            if isinstance(node, expr.Not):
                return items[0] if truths[0] is None else not truths[0]
            r = series.all3(truths) if node.op == "and" else series.any3(truths)
            if r is None:
                return expr.Missing([p for v in items if isinstance(v, expr.Missing) for p in v.paths]
                                    or [f"{expr.unparse(node)} is undecided"])
            return r
        raise ValueError(f"cannot evaluate {expr.unparse(node)}")  # pragma: no cover - the checker refuses it

    def _missing(self, path: str) -> str:
        why = self.sf.unavailable.get(path)
        return f"{path} (not computed: {why})" if why else path

    def _price_part(self, node: expr.Node) -> Any:
        if self._ss is None:
            self._ss = self.d.symbol_series(self.sf.stock)
            self._idx = self._ss.index(self.sf.date) if self._ss is not None else None
        if self._ss is None or self._idx is None:
            return expr.Missing([f"{expr.unparse(node)} (no price history on {self.sf.date})"])
        v = self._ss.at(node, self._idx)
        last = self._ss.dates[self._idx]
        if v is None:
            return expr.Missing([f"{expr.unparse(node)} (no value on {last})"])
        self._record(expr.unparse(node), v, DERIVED_SOURCE, last, describe_node(node, self.d.formulas))
        return v

    def _cross(self, node: expr.Call) -> Any:
        inner = node.args[0]
        scope = node.args[1]
        assert isinstance(inner, expr.FactRef) and isinstance(scope, expr.Word)
        own = self.value(inner)
        if isinstance(own, (expr.Missing, expr.Interval)):
            return own if isinstance(own, expr.Missing) else expr.Missing([f"{inner.path} known only as {own.text()}"])
        day = self.sf.date
        if day is None:
            return expr.Missing([f"{expr.unparse(node)} (no evaluation date)"])
        stock = self.sf.stock
        peers = self.d.cross.peers(stock, scope.name)
        values = self.d.cross.values(inner.path, day)
        others = [values[s] for s in peers if s in values]
        group = f"sector {stock.file.sector}" if scope.name == "sector" else "the universe"
        n = len(others) + 1
        if n < 2:
            return expr.Missing([f"{expr.unparse(node)} (no other symbol of {group} has {inner.path} on {day})"])
        x = float(own)
        below = sum(1 for v in others if v < x)
        equal = sum(1 for v in others if v == x)
        rank = below + 1 + equal / 2
        result = rank if node.fn == "rank" else (rank - 1) / (n - 1) * 100
        self._record(expr.unparse(node), result, "", day,
                     f"rank {rank:g} of {n} symbols of {group} with {inner.path} on {day}, lowest first"
                     + ("; percentile = (rank - 1) / (n - 1) x 100" if node.fn == "percentile" else ""))
        return result


class CrossSections:
    """Every symbol's value of a fact on a date, gathered once per (fact, date) for all symbols.

    Each value comes from the same pipeline as the symbol's own evaluation (derive.symbol_facts
    restricted to the fact and what it needs), so the freshness and conflict policies apply alike.
    `prefetch(days)` gathers many dates symbol by symbol, so each symbol's price formulas are computed
    once however many dates a backtest asks for.
    """

    def __init__(self, deriver: Deriver, max_entries: int = 512) -> None:  # a backtest's dates, symbol by symbol
        self.d = deriver
        self.max_entries = max_entries
        self._values: OrderedDict[tuple[str, dt.date], dict[str, float]] = OrderedDict()
        self._groups: dict[str, dict[str, list[str]]] = {}
        self.sweeps = 0  # symbol_facts calls made to gather values (for tests and the bench)

    def inner_paths(self) -> list[str]:
        return list(dict.fromkeys(a.path for f in self.d.formulas.later() if f.kind == "cross"
                                  for n in expr.walk(f.node) if isinstance(n, expr.Call) and n.fn in CROSS
                                  for a in n.args[:1] if isinstance(a, expr.FactRef)))

    def peers(self, stock: StockFacts, scope: str) -> list[str]:
        groups = self._groups.get(scope)
        if groups is None:
            groups = self._groups[scope] = {}
            for sym, s in self.d.base.stocks.items():
                groups.setdefault(s.file.sector if scope == "sector" else "", []).append(sym)
        key = stock.file.sector if scope == "sector" else ""
        return [s for s in groups.get(key, []) if s != stock.file.symbol]

    def values(self, path: str, day: dt.date) -> dict[str, float]:
        key = (path, day)
        hit = self._values.get(key)
        if hit is not None:
            self._values.move_to_end(key)
            return hit
        self._gather([path], [day])
        return self._values[key]

    def prefetch(self, days: Iterable[dt.date], paths: Iterable[str] | None = None) -> None:
        """Gather the cross-sectional inputs of many dates in one pass over the symbols."""
        todo_days = sorted(set(days))
        todo_paths = list(paths) if paths is not None else self.inner_paths()
        if todo_days and todo_paths:
            self.max_entries = max(self.max_entries, len(todo_days) * len(todo_paths) + 8)
            self._gather(todo_paths, todo_days)

    def _gather(self, paths: list[str], days: list[dt.date]) -> None:
        from .derive import symbol_facts

        found: dict[tuple[str, dt.date], dict[str, float]] = {(p, d): {} for p in paths for d in days}
        wanted = frozenset(paths)
        for sym, stock in self.d.base.stocks.items():  # symbol-major: each symbol's series computed once
            for day in days:
                sf = symbol_facts(self.d.base, stock, self.d.policy or _default_conflicts(), day, self.d,
                                  paths=wanted)
                self.sweeps += 1
                for p in paths:
                    c = sf.chosen.get(p)
                    v = c.value.value if c is not None and c.value.is_point else None
                    if isinstance(v, (int, float)) and not isinstance(v, bool):
                        found[(p, day)][sym] = float(v)
        for key, vals in found.items():
            self._values[key] = vals
        while len(self._values) > self.max_entries:
            self._values.popitem(last=False)


def for_catalog(catalog: Catalog, policy: Policy | None) -> Formulas:
    """The formulas a workspace evaluates: the catalog's, and the built-in technical facts it declares
    without one (computed with the policy's `technicals:` parameters)."""
    return with_builtins(of_catalog(catalog), catalog, policy.technicals if policy is not None else None)


_DEFAULT: dict[tuple[int, int], tuple[Any, Any, Deriver]] = {}


def default_deriver(base: FactBase, policy: Policy | None) -> Deriver:
    """The deriver of a fact base used without a workspace (tests, rule-test cases): the catalog's formulas."""
    key = (id(base), id(policy))
    hit = _DEFAULT.get(key)
    if hit is not None and hit[0] is base and hit[1] is policy:
        return hit[2]
    if len(_DEFAULT) > 16:
        _DEFAULT.clear()
    d = Deriver(for_catalog(base.catalog, policy), base, policy)
    _DEFAULT[key] = (base, policy, d)
    return d

