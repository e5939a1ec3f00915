"""One evaluation as people read it: the table at a terminal, Markdown, the derivation tree, and every
format `verdict evaluate SYMBOL` prints. The evaluation they render (what fired, on which values, by
what margin; what could not be evaluated and why) is made from a run's trace by engine/render.py.

Every number printed here comes from a fact (value, unit, source, as-of) or a rule (id, file:line).
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

from .. import expr
from ..model import Evaluation
from .tables import text_table

if TYPE_CHECKING:
    from ..model import Outcome


def money(v: float | None, currency: str = "RMB") -> str:
    return "-" if v is None else f"{currency} {v:,.2f}"


def entry_text(e: Any) -> str:
    rng = ""
    if e.low is not None or e.high is not None:
        rng = f" {money(e.low)} - {e.high:,.2f}" if e.low is not None and e.high is not None else \
            f" {money(e.low if e.low is not None else e.high)}"
    return f"{e.advice}{rng}" + (f": {e.note}" if e.note else "")


def render_tree(ev: Evaluation, depth: int | None = None) -> str:
    """The derivation tree: rating <- signals <- rules (pack, file:line) <- facts (value, source, as-of).

    Each rule is shown in full once, where it first appears (later: "see above"), and each derived
    fact's derivation once; `depth` limits how many levels of signal-emitting rules are opened below
    each rule the rating, target, entries or warnings name (None: all)."""
    facts = {f.path: f for f in ev.facts}
    fired = {f.rule: f for f in ev.fired}
    by_rule_signals: dict[str, list[Any]] = {}
    for s in ev.signals:
        by_rule_signals.setdefault(s.rule, []).append(s)
    lines: list[str] = []
    r = ev.rating_info
    lines.append(f"{ev.symbol} {ev.name}: {ev.rating} (score {expr.fmt_num(ev.score)}), facts as of {ev.as_of}")
    lines.append(f"  {ev.rating} = {r.meaning} [{r.scale}; benchmark {r.benchmark}; horizon {r.horizon}]")
    lines.append(f"  decided by: {r.decided_by}")
    if len(r.steps) > 1:
        lines += [f"    {i}. {step}" for i, step in enumerate(r.steps, 1)]
    lines += [f"  {line}" for line in evidence_lines(ev)]

    def fact_line(path: str, indent: str) -> str:
        fu = facts.get(path)
        if fu is None:
            return f"{indent}{path}: missing"
        unit = f" {fu.unit}" if fu.unit and fu.unit != "bool" else ""
        value = fu.value if not isinstance(fu.value, bool) else str(fu.value).lower()
        text = expr.show(float(value)) if isinstance(value, (int, float)) else str(value)
        eq = " " if text[:1] in "<>" else " = "
        known = f", known {fu.known_at}" if fu.known_at and fu.known_at != fu.as_of else ""
        line = f"{indent}{path}{eq}{text}{unit} [{fu.source}, {fu.as_of}{known}]"
        if fu.derived and not fu.derived.startswith("header of") and path not in derivations_shown:
            derivations_shown.add(path)
            line += f"\n{indent}    derived: {fu.derived}"
        return line

    derivations_shown: set[str] = set()
    opened: dict[str, float] = {}  # rule -> levels below it that were opened where it was shown in full
    limit = math.inf if depth is None else depth

    def rule_block(rule_id: str, indent: str, level: int) -> None:
        f = fired[rule_id]
        head = f"{indent}<- {f.rule} ({f.pack}, {f.file}:{f.line})"
        below = limit - level
        if opened.get(rule_id, -1) >= below:
            lines.append(f"{head} (see above)")
            return
        opened[rule_id] = below if any(u["by"] in fired for u in f.signals_used) else math.inf  # a leaf is whole
        lines.append(head + (f" {f.title}" if f.title else ""))
        for c in f.comparisons:
            lines.append(f"{indent}     {c.text}")
        for path in f.facts:
            lines.append(fact_line(path, indent + "     "))
        for u in f.signals_used:
            if u["by"] in fired and below <= 0:
                lines.append(f"{indent}     <- signal {u['name']} from {u['by']} (not opened: deeper than --depth "
                             f"{expr.fmt_num(limit)})")
                continue
            lines.append(f"{indent}     <- signal {u['name']} from {u['by']}")
            if u["by"] in fired and level < 32:
                rule_block(str(u["by"]), indent + "        ", level + 1)

    lines.append("")
    lines.append("Rating <- signals")
    for s in sorted(ev.signals, key=lambda s: (-abs(s.score), s.name)):
        lines.append(f"  {s.score:+g} {s.name}" + (f": {s.note}" if s.note else ""))
        rule_block(s.rule, "    ", 0)
    if ev.target:
        lines.append("")
        lines.append(f"Target {target_text(ev.target)}")
        if ev.target.rule in fired:
            if ev.target.note:
                lines.append(f"  {ev.target.note}")
            rule_block(ev.target.rule, "  ", 0)
    for v in ev.valuations:
        lines.append(f"  {'<-' if v.used else 'cross-check:'} {v.method} ({v.kind}, {v.file}:{v.line}) {v.title}")
        lines.append(f"     {v.how}")
        for path in v.inputs:
            lines.append(fact_line(path, "     "))
    if ev.entries:
        lines.append("")
        lines.append("Entries")
        for e in ev.entries:
            lines.append(f"  {e.horizon}: {entry_text(e)}")
            rule_block(e.rule, "    ", 0)
    if ev.warnings:
        lines.append("")
        lines.append("Warnings")
        for w in ev.warnings:
            lines.append(f"  [{w.severity}] {w.message}")
            if w.rule in fired:
                rule_block(w.rule, "    ", 0)
            else:
                lines.append(f"    <- {w.rule}")
    rest = [f.rule for f in ev.fired if f.rule not in opened]
    if rest:  # fired, but what they set was superseded (an entry of a horizon another rule gives first)
        lines.append("")
        lines.append("Also fired (what they set was superseded by a rule of higher salience)")
        for rule_id in rest:
            rule_block(rule_id, "  ", 0)
    if ev.fact_checks:
        lines.append("")
        lines.append("Stated facts checked against the price history")
        for c in ev.fact_checks:
            stated = "; ".join(f"{expr.show(s['value']) if not isinstance(s['value'], str) else s['value']} "
                               f"({s['source']}, {s['as_of']})" for s in c.stated)
            derived = expr.show(float(c.derived)) if isinstance(c.derived, (int, float)) and not isinstance(
                c.derived, bool) else str(c.derived).lower()
            lines.append(f"  {'agree   ' if c.agree else 'DISAGREE'} {c.path}: prices give {derived}, "
                         f"stated {stated}")
            lines.append(f"           ({c.how})")
    ne = [n for n in ev.not_fired if n.status == "not_evaluable"]
    if ne:
        lines.append("")
        lines.append("Not evaluable (a fact is missing or known only as a bound)")
        for n in ne:
            lines.append(f"  {n.rule} ({n.file}:{n.line}): needs {', '.join(n.missing)}")
    lines.append("")
    lines.append(f"ruleset {ev.ruleset_hash[:12]}  facts {ev.facts_hash[:12]}  engine {ev.engine_version}")
    lines.append(ev.disclaimer)
    return "\n".join(lines) + "\n"


def render_markdown(ev: Evaluation) -> str:
    r = ev.rating_info
    out = [f"# {ev.name} ({ev.symbol}): {ev.rating}", "",
           f"*{ev.rating}*: {r.meaning} ({r.scale}; benchmark {r.benchmark}; horizon {r.horizon}). "
           f"Score {expr.fmt_num(ev.score)}; {r.decided_by}. Facts as of {ev.as_of}.", ""]
    if ev.target:
        out.append(f"**Target:** {target_text(ev.target)} (`{ev.target.rule}`)")
        out.append("")
    ev_lines = evidence_lines(ev)
    if ev_lines:
        out += [f"- {line.strip()}" for line in ev_lines]
        out.append("")
    if ev.entries:
        out += ["| horizon | advice | low | high | note | rule |", "|---|---|---|---|---|---|"]
        for e in ev.entries:
            out.append(f"| {e.horizon} | {e.advice} | {'' if e.low is None else f'{e.low:.2f}'} | "
                       f"{'' if e.high is None else f'{e.high:.2f}'} | {e.note} | `{e.rule}` |")
        out.append("")
    if ev.warnings:
        out.append("**Warnings**")
        out.append("")
        out += [f"- **{w.severity}** {w.message} (`{w.rule}`)" for w in ev.warnings]
        out.append("")
    out.append("**Rules fired**")
    out.append("")
    out += [f"- `{f.rule}` ({f.file}:{f.line}): " + "; ".join(c.text for c in f.comparisons) for f in ev.fired]
    out += ["", f"_{ev.disclaimer}_", ""]
    return "\n".join(out)


def target_text(t: Any) -> str:
    text = f"{money(t.low, t.currency)} - {t.high:,.2f}"
    if getattr(t, "value", None) is not None:
        text += f", value {t.value:,.2f}"
    if getattr(t, "upside_pct", None) is not None:
        text += f", upside {t.upside_pct:+.1f}%"
    return text


def evidence_lines(ev: Any) -> list[str]:
    """Coverage and fragility, one line each (the table and the tree)."""
    out = []
    cov = getattr(ev, "coverage", None)
    if cov is not None and cov.families:
        present = [f.family for f in cov.families if f.present]
        absent = [f.family for f in cov.families if not f.present]
        line = f"Evidence: coverage {cov.percent:.0f}% of the rules' facts; present: {', '.join(present) or 'none'}"
        if absent:
            line += f"; missing: {', '.join(absent)}"
        out.append(line)
        out += [f"  {need}" for need in cov.needs]
    frag = getattr(ev, "fragility", None)
    if frag is not None:
        if frag.fragile:
            out.append("Fragile: " + "; ".join(frag.notes))
        else:
            out.append("Not fragile: no single signal" + (", and no deciding fact within the policy's margin,"
                                                          if frag.facts_checked else "") + " changes the rating")
    return out


def render_table(ev: Any, width: int | None = None) -> str:
    """One evaluation as people read it at a terminal: rating, target, entries, warnings, signals."""
    r = ev.rating_info
    out = [f"{ev.name} ({ev.symbol})",
           f"  {ev.rating}  score {expr.fmt_num(ev.score)}   facts as of {ev.as_of}",
           f"  {ev.rating} = {r.meaning}",
           f"  {r.scale}; benchmark {r.benchmark}; horizon {r.horizon}; {r.decided_by}"]
    if ev.target:
        out.append(f"  Target: {target_text(ev.target)}  ({ev.target.rule})")
    out += [f"  {line}" for line in evidence_lines(ev)]
    if ev.entries:
        rows = [[e.horizon, e.advice, "" if e.low is None and e.high is None else
                 f"{'' if e.low is None else f'{e.low:.2f}'} - {'' if e.high is None else f'{e.high:.2f}'}",
                 e.note, e.rule] for e in ev.entries]
        out += ["", text_table("Entries", ["horizon", "advice", "range", "note", "rule"], rows, fold=3, width=width)]
    if ev.warnings:
        rows = [[w.severity, w.message, w.rule] for w in ev.warnings]
        out += ["", text_table("Warnings", ["severity", "message", "rule"], rows, fold=1, width=width)]
    rows = [[f"{s.score:+g}", s.name, getattr(s, "note", ""), s.rule]
            for s in sorted(ev.signals, key=lambda s: (-s.score, s.name))]
    not_evaluable = sum(1 for n in ev.not_fired if n.status == "not_evaluable")
    out += ["", text_table(f"Signals ({len(ev.fired)} rules fired, {not_evaluable} not evaluable)",
                           ["score", "signal", "note", "rule"], rows, fold=2, right=frozenset({0}), width=width)]
    out += ["", f"{ev.disclaimer}  Use --explain for the derivation tree."]
    return "\n".join(out)


def render_rows(evs: list[Any], width: int | None = None) -> str:
    """A screen: one line per symbol (Evaluation or Summary)."""
    rows = [[ev.symbol, ev.name, ev.rating, expr.fmt_num(ev.score),
             f"{ev.target.low:.2f}-{ev.target.high:.2f}" if ev.target else "",
             f"{ev.target.upside_pct:+.1f}%" if ev.target and ev.target.upside_pct is not None else "",
             f"{ev.coverage.percent:.0f}%" if getattr(ev, "coverage", None) else "",
             "yes" if getattr(ev, "fragility", None) and ev.fragility.fragile else "",
             str(len(ev.warnings)), str(ev.as_of)]
            for ev in evs]
    out = [text_table(f"verdict: {len(evs)} symbol(s)", ["symbol", "name", "rating", "score", "target", "upside",
                                                         "coverage", "fragile", "warnings", "as of"], rows,
                      right=frozenset({3, 5, 6, 8}), width=width)]
    if evs:
        r = evs[0].rating_info
        out.append(f"Ratings on the {r.scale} (benchmark {r.benchmark}, horizon {r.horizon}). {evs[0].disclaimer}")
    return "\n".join(out)


def evaluation_output(outcome: Outcome, fmt: str, *, explain: bool = False, depth: int | None = None,
                      width: int | None = None) -> str:
    """The text `verdict evaluate SYMBOL` prints, ending with a newline."""
    from .screen import summary_csv

    if fmt == "jsonl":
        return outcome.json() + "\n"
    if fmt == "json":
        from ..jsontext import indented

        return indented(json.loads(outcome.json())) + "\n"
    if fmt == "csv":
        return summary_csv([outcome.summary])
    if explain:
        return render_tree(outcome.evaluation(), depth) + "\n"
    if fmt == "markdown":
        return render_markdown(outcome.evaluation()) + "\n"
    return render_table(outcome.evaluation(), width) + "\n"
