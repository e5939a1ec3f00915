"""The library entry point: load -> derive -> compile -> run -> resolve -> explain, for one symbol.

`Workspace.open(rules, facts)` loads and compiles once; `evaluate(symbol)` runs one isolated
durable_rules session per call. The CLI is a thin shell over this; so are the tests.

`run(symbol)` stops before explain: the outcome (rating, target, entries, warnings, signals) and
the trace as captured (every firing in order, with the facts durable matched, on the resolved facts
and their sources). `Run.evaluation()` renders that trace: the comparisons of every rule, what
blocked each rule that did not fire, and the cross-check of durable against the evaluator. A
screen of thousands of symbols that prints a table needs only the first; rendering costs several
times the matching at 200 rules, so it is done for what is shown or recorded.
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from . import expr
from .compile import Compiled, compile_rules
from .derive import SymbolFacts, symbol_facts
from .errors import Location, LookupFailure, Problem
from .formulas import Deriver, for_catalog
from .load import FactBase, LoadedRule, RuleBook, load_facts, load_rules
from .model import Evaluation, Fragility, Summary
from .parsecache import ParseCache
from .resolve import Resolution, resolve, signal_env
from .rete import Firing


def engine_version() -> str:
    from . import __version__

    return __version__


def durable_facts(facts: SymbolFacts, compiled: Compiled) -> dict[str, dict[str, Any]]:
    """The stock/sector/commodity facts durable sees: only fields some rule reads, bounds as fields."""
    out: dict[str, dict[str, Any]] = {}
    for path, ns, name in compiled.read_fields:
        chosen = facts.chosen.get(path)
        if chosen is None:
            continue
        fv = chosen.value
        slot = out.setdefault(ns, {})
        if fv.is_point:
            slot[name] = fv.value if not isinstance(fv.value, dt.date) else fv.value.toordinal()
        elif path in compiled.bounded:
            for b in ("gt", "gte", "lt", "lte"):
                v = getattr(fv, b)
                if v is not None:
                    slot[f"{name}__{b}"] = v
    if compiled.synthesised:  # what durable cannot compute (compile.py): computed here, compared there
        env = expr.EvalEnv(facts.values(), {}, facts.date)
        for path, node in compiled.synthesised.items():
            v = expr.value_of(node, env)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                ns, name = path.split(".", 1)
                out.setdefault(ns, {})[name] = v
    for ns in ("stock", "sector", "commodity"):
        out.setdefault(ns, {})
    return out


@dataclass
class Workspace:
    rules_dir: Path
    facts_dir: Path
    book: RuleBook
    facts: FactBase
    compiled: Compiled

    @classmethod
    def open(cls, rules_dir: Path | str = "rules", facts_dir: Path | str = "facts", partial: bool = False,
             cache: ParseCache | Literal["user"] | None = "user") -> Workspace:
        """Load and compile once. `partial`: leave out (and keep in facts.skipped) stocks with bad files,
        so they affect only their own symbol. `cache`: the user's parse cache ("user", the default), a
        given one, or None to parse every file afresh (as audit replays do)."""
        rules_path, facts_path = Path(rules_dir), Path(facts_dir)
        if cache == "user":
            cache = ParseCache.default(facts_path)
        facts = load_facts(facts_path, partial=partial, cache=cache)
        book = load_rules(rules_path, facts.catalog)
        if book.catalog is not None:
            facts.catalog = book.catalog  # with the derived facts the packs declare: every stage reads it
        if book.valuations:
            from .valuation import SOURCE, VALUATION_SOURCE

            facts.sources.setdefault(VALUATION_SOURCE, SOURCE)
        return cls(rules_path, facts_path, book, facts, compile_rules(book, facts.catalog))

    @cached_property
    def rules(self) -> dict[str, LoadedRule]:
        return self.book.by_id()

    @cached_property
    def deriver(self) -> Deriver:
        """The derived facts (catalog formulas) with their compute-once caches: each symbol's price
        formulas over its whole series (`deriver.symbol_series`, `deriver.price_facts(stock, day)`),
        and each date's cross-sections (`deriver.cross.prefetch(days)` before a backtest)."""
        return Deriver(for_catalog(self.facts.catalog, self.book.policy), self.facts, self.book.policy)

    def symbols(self) -> list[str]:
        return sorted(self.facts.stocks)

    def symbol_facts(self, query: str, as_of: dt.date | None = None) -> SymbolFacts:
        """The symbol's facts on the evaluation date, with the target and upside of the packs' valuation
        method; an error if nothing about the stock was known by then (a rating from no facts at all would
        look like a judgement)."""
        stock = self.facts.find(query)
        sf = symbol_facts(self.facts, stock, self.book.policy, as_of, self.deriver)
        day = sf.date
        if day is not None and not any(c.path.startswith("stock.") and not c.derived.startswith("header")
                                       for c in sf.chosen.values()):
            known = [v.known for vs in stock.facts.values() for v in vs]
            known += [stock.series.bars[0].date] if stock.series is not None and stock.series.bars else []
            if known and min(known) <= day:  # things were known, but all of them are too old to use on `day`
                bars = stock.series.until(day).bars if stock.series is not None else []
                last = f"its last price bar is {bars[-1].date} ({(day - bars[-1].date).days} days before)" if bars \
                    else f"its newest fact is as of {max(v.as_of for vs in stock.facts.values() for v in vs)}"
                raise LookupFailure([Problem(Location(stock.path), "nothing-fresh",
                                             f"nothing about {stock.file.symbol} is fresh on {day}: {last}, older "
                                             "than the policy's freshness limits (suspended, delisted, or the data "
                                             "ends there).", "Evaluate as of an earlier date (--as-of), or bring "
                                             "its data up to date (verdict data import).")])
            since = f"; the first is known on {min(known)}" if known else ""
            raise LookupFailure([Problem(Location(stock.path), "nothing-known",
                                         f"nothing about {stock.file.symbol} is known on or before {day}: no fact "
                                         f"and no price bar{since}.",
                                         "Evaluate as of a later date (--as-of), or add facts for that time.")])
        return self.valued(sf)

    def valued(self, sf: SymbolFacts) -> SymbolFacts:
        """`sf` with the valuation facts (re)computed from its inputs: an overridden input moves the target."""
        from . import valuation

        return valuation.apply(self.book, sf)

    def evaluate(self, query: str, run_id: str | None = None, as_of: dt.date | None = None) -> Evaluation:
        return self.evaluate_facts(self.symbol_facts(query, as_of), run_id)

    def run(self, query: str, run_id: str | None = None, as_of: dt.date | None = None) -> Run:
        """The outcome and the captured trace, not yet rendered (see the module note)."""
        return self.run_facts(self.symbol_facts(query, as_of), run_id)

    def rate(self, sf: SymbolFacts) -> tuple[str, float]:
        """Only the rating and score (no trace): for searches that re-evaluate many times."""
        return self.rate_valued(self.valued(sf))

    def rate_valued(self, sf: SymbolFacts) -> tuple[str, float]:
        """`rate` of facts whose valuation is already computed (`valued`)."""
        from . import rete
        from .evidence import index
        from .resolve import rate

        result = rete.engine().run(self.compiled, durable_facts(sf, self.compiled))
        r = rate(result.firings, self.rules, self.book.policy, sf.chosen, index(self.book))
        return r.name, r.score

    def run_facts(self, sf: SymbolFacts, run_id: str | None = None) -> Run:
        """Run prepared facts (a symbol's, with overrides, or a test case's) through durable and resolve."""
        from . import rete

        run_id = run_id or uuid.uuid4().hex
        sf = self.valued(sf)
        result = rete.engine().run(self.compiled, durable_facts(sf, self.compiled))
        return Run(self, sf, result.firings, resolve(result.firings, self.rules, self.book.policy, sf, self.book),
                   run_id, result.asserted, result.sid_head)

    def evaluate_facts(self, sf: SymbolFacts, run_id: str | None = None) -> Evaluation:
        """Evaluate prepared facts, with the trace rendered."""
        return self.run_facts(sf, run_id).evaluation()


@dataclass
class Run:
    """One evaluation as it ran: the resolved outcome and the trace as captured, unrendered."""

    workspace: Workspace
    facts: SymbolFacts
    firings: list[Firing]
    resolution: Resolution
    run_id: str
    asserted: dict[str, str] = field(default_factory=dict)  # fact kind -> as asserted into durable_rules
    sid_head: str = ""  # how durable's messages open each asserted fact (rete.DurableResult)

    @property
    def symbol(self) -> str:
        return self.facts.stock.file.symbol

    @property
    def rating(self) -> str:
        return self.resolution.rating.name

    @property
    def score(self) -> float:
        return self.resolution.score

    def trace(self, fragile_facts: bool = True) -> dict[str, Any]:
        """What ran, unrendered: the outcome and the captured trace as plain data (engine/capture.py), as
        a recorded run stores it. `fragile_facts=False` checks fragility on the score alone, as a screen
        does (the facts' check re-evaluates the symbol for every threshold near a fact)."""
        from .capture import of_run

        return of_run(self, fragile_facts)

    def rendered(self, fragile_facts: bool = True) -> dict[str, Any]:
        """The full evaluation as data: the trace rendered on the rules it ran on (engine/render.py)."""
        from .render import render

        return render(self.trace(fragile_facts), self.workspace.rules, self.workspace.compiled)

    def document(self, fragile_facts: bool = True) -> str:
        """The full evaluation's JSON (`evaluation().model_dump_json()`, without building the models)."""
        from .render import document

        return document(self.rendered(fragile_facts))

    def evaluation(self) -> Evaluation:
        """Render the trace and cross-check durable's decisions: the full, recordable evaluation."""
        from .render import model

        return model(self.rendered())

    def outcome(self, fragile_facts: bool = True) -> dict[str, Any]:
        """What the evaluation concluded beyond the summary, as its models dump it: coverage, fragility,
        valuations and signals (with their notes). Part of the trace (engine/capture.py)."""
        from .valuation import Valued

        res = self.resolution
        primary = next((v for v in res.valuations if isinstance(v, Valued)), None)
        return {"coverage": None if res.coverage is None else res.coverage.model_dump(mode="json"),
                "fragility": self.fragility(fragile_facts).model_dump(mode="json"),
                "valuations": [v.out(v is primary).model_dump(mode="json") for v in res.valuations
                               if isinstance(v, Valued)],
                "signals": self._signals_out()}

    def _signals_out(self) -> list[dict[str, Any]]:
        """The signals as `SignalOut(...).model_dump(mode="json")` gives them, without building the models
        (~45 per symbol at 200 rules: the models were a third of capturing a trace). The environment a
        note's template reads is built only when a signal has a note to render (most rules have none)."""
        rules, res = self.workspace.rules, self.resolution
        env: expr.EvalEnv | None = None
        out = []
        for s in res.signals:
            note = ""
            lr = rules[s.rule]
            if lr.templates:
                i = next((k for k, (name, _) in enumerate(lr.emitted) if name == s.name), None)
                parts = lr.templates.get(f"signal.{i}.note") if i is not None else None
                if parts:
                    if env is None:
                        env = expr.EvalEnv(self.facts.values(), signal_env(res.signals), self.facts.date)
                    note = expr.render_template(parts, env)
            out.append({"name": s.name, "score": float(s.score), "rule": s.rule, "sources": list(s.sources),
                        "note": note})
        return out

    def fragility(self, facts: bool = True) -> Fragility:
        """Whether one signal, or a move within the policy's margin in a deciding fact, changes the rating
        (assessed once per run and kind: a screen's summary and trace share it)."""
        from .fragility import assess

        done: dict[bool, Fragility] = self.__dict__.setdefault("_fragility", {})
        if facts not in done:
            done[facts] = assess(self, facts)
        return done[facts]

    def summary(self, fragile_facts: bool = False) -> Summary:
        """The outcome alone, for a screen's table or CSV (no trace rendered, no cross-check; fragility
        on the score alone unless `fragile_facts`)."""
        res, file = self.resolution, self.facts.stock.file
        return Summary.model_construct(
            symbol=file.symbol, name=file.name, sector=file.sector, as_of=self.facts.as_of, rating=res.rating.name,
            score=res.score, rating_info=res.rating, target=res.target, entries=res.entries, warnings=res.warnings,
            coverage=res.coverage, fragility=self.fragility(facts=fragile_facts),
            fired=[f.rule for f in self.firings], run_id=self.run_id, ruleset_hash=self.workspace.compiled.digest,
            engine_version=engine_version(), disclaimer=self.workspace.book.policy.disclaimer)
