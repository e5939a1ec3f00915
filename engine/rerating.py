"""The rating of a run's facts with one of them moved: the fragility check's probes.

A probe moves a fact (and what is computed from it) to a threshold and asks for the rating. durable_rules
runs the moved facts again unless no rule can fire differently on them. That is known when every rule
whose condition reads a moved fact has the same truth on the moved facts as on the run's (the
evaluator that explains and cross-checks every evaluation, given the run's signals), and neither truth
is unknown. A rule's truth depends only on the facts it reads and on the signals of the rules it
follows, so in dependency order each rule then fires as it did in the run, and the run's firings are the
moved facts' firings. This needs the order to exist: a book whose signals form a cycle (allowed when no
`not` is in it) is always run again. The policy's own checks (evidence, the upside) are applied to the
moved facts either way.

About a third of the probes of a 200-rule book are answered so (bench/RESULTS.md); each would cost a
durable run.
"""

from __future__ import annotations

from collections.abc import Iterable
from graphlib import CycleError, TopologicalSorter
from typing import TYPE_CHECKING

from . import expr
from .evidence import index
from .render import Conditions
from .resolve import rate, signal_env

if TYPE_CHECKING:
    from .derive import SymbolFacts
    from .load import RuleBook
    from .pipeline import Run

Readers = dict[str, list[str]]


def readers(book: RuleBook) -> Readers | None:
    """fact path -> the rules whose conditions read it; None when the book's
    signals form a cycle. Built once per rule book."""
    if "_readers" not in book.__dict__:
        out: Readers | None = None
        if not signal_cycle(book):
            out = {}
            for r in book.rules:
                for path in dict.fromkeys(expr.fact_paths(r.cond)):
                    out.setdefault(path, []).append(r.id)
        book.__dict__["_readers"] = out
    found: Readers | None = book.__dict__["_readers"]
    return found


def signal_cycle(book: RuleBook) -> bool:
    """Whether some rule depends, through the signals it reads, on itself."""
    producers: dict[str, list[str]] = {}
    for r in book.rules:
        for s in r.rule.then.signals():
            producers.setdefault(s.name, []).append(r.id)
    graph = {r.id: {p for name, _ in expr.signal_refs(r.cond) for p in producers.get(name, ())} for r in book.rules}
    try:
        TopologicalSorter(graph).prepare()
    except CycleError:
        return True
    return False


class Rerating:
    """Ratings of one run's facts, moved; counts how many took a durable run (`rerun`) and how many
    the run's own firings answered (`reused`)."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.readers = readers(run.workspace.book)
        self.base = run.facts.values()
        self.signals = signal_env(run.resolution.signals)
        self.conditions = Conditions(run.workspace.rules, run.workspace.compiled)
        self.base_vals = Conditions.values(self.base)
        self.truths: dict[str, bool | None] = {}
        self.rerun = 0
        self.reused = 0

    def rating(self, moved: SymbolFacts, likely: Iterable[str] = ()) -> str:
        """The rating of `moved` (the run's facts with some replaced). `likely`: rules whose truth the
        move probably changes, checked first (a probe's own threshold rules: most probes change one)."""
        ws = self.run.workspace
        sf = ws.valued(moved)
        if self.fires_as_run(sf, likely):
            self.reused += 1
            return rate(self.run.firings, ws.rules, ws.book.policy, sf.chosen, index(ws.book)).name
        self.rerun += 1
        return ws.rate_valued(sf)[0]

    def fires_as_run(self, sf: SymbolFacts, likely: Iterable[str] = ()) -> bool:
        """Whether every rule reading a fact that differs in `sf` has the truth it had in the run, known."""
        if self.readers is None:
            return False
        now, base = sf.values(), self.base
        todo: dict[str, None] = {}
        vals = dict(self.base_vals)
        for path in base.keys() | now.keys():
            before, after = base.get(path), now.get(path)
            if before is not after and before != after:
                todo.update(dict.fromkeys(self.readers.get(path, ())))
                if after is None:
                    del vals[path]
                else:
                    vals.update(Conditions.values({path: after}))
        truth = self.conditions.truth
        for rule_id in [*(r for r in likely if r in todo), *todo]:
            if rule_id not in todo:
                continue  # a likely rule, checked already
            del todo[rule_id]
            if rule_id not in self.truths:
                self.truths[rule_id] = truth(rule_id, base, self.base_vals, self.signals, self.run.facts.date)
            was, now_true = self.truths[rule_id], truth(rule_id, now, vals, self.signals, sf.date)
            if was is None or now_true is None or now_true != was:
                return False
        return True
