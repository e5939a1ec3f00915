"""The report page as HTML: one self-contained file (styles, script and charts inline; nothing fetched).

Everything that comes from a file (names, titles, notes, messages, sources) is user text and goes
through `escape`; addresses become links only when they are http(s). The page carries a Content
Security Policy that forbids loading anything, so it cannot reach the network even by mistake. The
same PageData always gives the same bytes: no clock, no random ids, no paths of this machine.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

from . import reportquality as quality_fields
from .htmltext import e, flat, href, num, pct
from .model import Evaluation, FactUse, Fired
from .report import DEFAULT_WINDOW, MAX_SENSITIVITY_ROWS, Cited, FactSources, Flip, PageData
from .svgchart import TornadoRow, price_chart, tornado

CSP = "default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:"
SEVERITIES = ("high", "medium", "low")
FACT_PATH = re.compile(r"\b(?:stock|sector|commodity)\.[a-z][a-z0-9_]*")
KNOWN_FACT_FIELDS = ("path", "value", "unit", "as_of", "source", "derived")


@cache
def _asset(name: str) -> str:
    return resources.files("engine").joinpath("assets", name).read_text(encoding="utf-8")


def _doc(title: str, body: str, version: str) -> str:
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
            '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
            f'<meta name="generator" content="verdict {e(version)}">\n'
            f"<title>{e(title)}</title>\n<style>\n{_asset('report.css')}</style>\n</head>\n<body>\n"
            f"{body}\n<script>\n{_asset('report.js')}</script>\n</body>\n</html>\n")


def _rank(ev: Evaluation) -> int:
    names = [b.name for b in ev.rating_info.bands]
    return names.index(ev.rating) if ev.rating in names else len(names)


# ----------------------------------------------------------------------------------- header


def _score_gauge(ev: Evaluation) -> str:
    bands = ev.rating_info.bands
    mins = [b.min_score for b in bands if b.min_score is not None]
    if not mins:
        return ""
    lo = min(min(mins) - 3, ev.score - 1)
    hi = max(max(mins) + 3, ev.score + 1)
    w, left, right, y, h = 420, 6, 414, 14, 16

    def x(v: float) -> float:
        return left + (v - lo) / (hi - lo) * (right - left)

    parts = [f'<svg class="score-gauge" viewBox="0 0 {w} 58" role="img" aria-label="score '
             f'{e(num(ev.score))} against the rating bands" xmlns="http://www.w3.org/2000/svg">']
    top = hi
    shades = ("#0b7285", "#1c7ed6", "#adb5bd", "#d9480f", "#c92a2a")
    for i, b in enumerate(bands):
        start = b.min_score if b.min_score is not None else lo
        x1, x2 = x(start), x(top)
        parts.append(f'<rect class="seg" x="{x1:.1f}" y="{y}" width="{max(x2 - x1, 0):.1f}" height="{h}" '
                     f'fill="{shades[min(i, len(shades) - 1)]}" fill-opacity="{1 if b.name == ev.rating else .45}">'
                     f"<title>{e(b.name)}: score {'>= ' + num(b.min_score) if b.min_score is not None else 'below'}"
                     f"</title></rect>")
        ink = "#fff" if b.name == ev.rating else "#212529"
        parts.append(f'<text x="{(x1 + x2) / 2:.1f}" y="{y + h - 4}" text-anchor="middle" fill="{ink}">'
                     f"{e(b.name)}</text>")
        if b.min_score is not None:
            parts.append(f'<text x="{x1:.1f}" y="{y - 3}" text-anchor="middle">{e(num(b.min_score))}</text>')
        top = start
    sx = x(ev.score)
    parts.append(f'<path d="M{sx - 6:.1f} {y + h + 16}l6 -8l6 8z" fill="#212529"/>'
                 f'<line x1="{sx:.1f}" x2="{sx:.1f}" y1="{y - 2}" y2="{y + h + 2}" stroke="#212529" stroke-width="3"/>'
                 f'<text x="{sx:.1f}" y="{y + h + 34 - 6}" text-anchor="middle" font-weight="700">score '
                 f"{e(num(ev.score))}</text></svg>")
    return "".join(parts)


def _header(d: PageData) -> str:
    ev, r = d.evaluation, d.evaluation.rating_info
    alias = "".join(f'<span class="alias" lang="zh-CN">{e(a)}</span>' for a in d.aliases)
    price = d.price
    target = ""
    if ev.target:
        t = ev.target
        up = ""
        if price is not None:
            p = float(price.value)
            lo, hi = (t.low / p - 1) * 100, (t.high / p - 1) * 100
            cls = "pos" if (lo + hi) / 2 >= 0 else "neg"
            up = (f'<dt>upside</dt><dd class="{cls}" id="upside">{pct(lo)} to {pct(hi)} '
                  f'<span class="dim">from {e(t.currency)} {p:,.2f} (<a href="#fact-{e(price.path)}">'
                  f"{e(price.path)}</a>, {e(price.as_of)})</span></dd>")
        target = (f'<dt>target</dt><dd class="big" id="target">{e(t.currency)} {t.low:,.2f} - {t.high:,.2f}</dd>'
                  f"{up}"
                  + (f'<dt></dt><dd class="dim">{e(t.note)}</dd>' if t.note else "")
                  + f'<dt>from</dt><dd><a class="rule-link" href="#rule-{e(t.rule)}">{e(t.rule)}</a></dd>')
    else:
        target = '<dt>target</dt><dd id="target">none: no target rule could compute its bounds</dd>'
    fired = {f.rule for f in ev.fired}
    # fields of the rating stage, shown when the evaluation carries them (reportquality.py)
    quality = quality_fields.coverage(getattr(ev, "coverage", None)) + \
        quality_fields.fragility(getattr(ev, "fragility", None), fired)
    return f"""<header class="hdr"><div class="in">
<h1>{e(ev.name)}{alias}<span class="sym">{e(ev.symbol)}</span></h1>
<div class="sub">sector {e(ev.sector)} &middot; facts as of {e(ev.as_of)} &middot; run \
<span class="mono">{e(ev.run_id)}</span></div>
<div class="hdr-grid">
<div><span class="badge r{_rank(ev)}" id="rating">{e(ev.rating)}</span>
<p class="meaning">{e(ev.rating)}: {e(r.meaning)}</p>
<p class="dim">{e(r.scale)}; benchmark {e(r.benchmark)}; horizon {e(r.horizon)}</p></div>
<div>{_score_gauge(ev)}<p class="dim">decided by: {e(r.decided_by)}</p>
{quality_fields.steps(getattr(r, "steps", None))}<dl class="kv quality">{quality}</dl></div>
<div><dl class="kv">{target}</dl></div>
</div>
<p class="disclaimer">{e(ev.disclaimer)}</p>
<nav class="toc"><a href="#chart">chart</a><a href="#entries">entries</a><a href="#warnings">warnings</a>\
<a href="#tree">derivation</a><a href="#facts">facts</a><a href="#sensitivity">sensitivity</a>\
<a href="#provenance">run and replay</a></nav>
</div></header>"""


# ----------------------------------------------------------------------------------- chart, entries


def _chart(d: PageData) -> str:
    ev = d.evaluation
    if not d.candles or d.indicators is None:
        return ('<section id="chart"><h2>Price</h2><p class="dim">No price history for this symbol: nothing to '
                "chart.</p></section>")
    first, last = d.candles[0].date, d.candles[-1].date
    title = f"{ev.name} ({ev.symbol}) daily prices {first} to {last}"
    legend = ['<span><i class="sw up"></i>close at or above open</span>',
              '<span><i class="sw dn"></i>close below open</span>']
    for b in d.bands:
        legend.append(f'<span data-legend="{e(b.key)}"><i class="sw {e(b.key)}"></i>{e(b.label)}</span>')
    for lv in d.levels:
        legend.append(f'<span><i class="sw {e(lv.kind)}"></i>{e(lv.label)}</span>')
    for en in ev.entries:
        if en.low is None or en.high is None:
            legend.append(f'<span data-legend="{e(en.horizon)}">{e(en.horizon)}-term: {e(en.advice)} '
                          "(no range)</span>")
    return (f'<section id="chart"><h2>Price, last {len(d.candles)} trading days <span class="dim">'
            f"({e(d.price_basis)}; {first} to {last})</span></h2>\n"
            f"{price_chart(d.candles, d.indicators, d.bands, d.levels, title)}\n"
            f'<div class="legend">{"".join(legend)}</div></section>')


def _rule_link(rule: str, fired: set[str], message: str = "", facts: frozenset[str] = frozenset()) -> str:
    """A link to the rule's node in the derivation; a warning about the facts themselves (facts.conflict,
    facts.stale) links to the first fact its message names."""
    target = f"rule-{rule}" if rule in fired else "facts"
    if rule not in fired:
        named = next((p for p in FACT_PATH.findall(message) if p in facts), None)
        target = f"fact-{named}" if named else target
    return f'<a class="rule-link" href="#{e(target)}">{e(rule)}</a>'


def _entries(d: PageData, fired: set[str]) -> str:
    ev = d.evaluation
    if not ev.entries:
        return '<section id="entries"><h2>Entry ranges</h2><p class="dim">No entry rule fired.</p></section>'
    rows = []
    for en in ev.entries:
        rng = "" if en.low is None or en.high is None else f"{en.low:,.2f} - {en.high:,.2f}"
        rows.append(f'<tr data-entry="{e(en.horizon)}"><td><i class="sw {e(en.horizon)}"></i>{e(en.horizon)}</td>'
                    f"<td>{e(en.advice)}</td><td class=\"num\">{rng}</td><td>{e(en.note)}</td>"
                    f"<td>{_rule_link(en.rule, fired)}</td></tr>")
    return ('<section id="entries"><h2>Entry ranges</h2><table><thead><tr><th>horizon</th><th>advice</th>'
            '<th class="num">range</th><th>note</th><th>rule</th></tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></section>")


def _warnings(ev: Evaluation, fired: set[str]) -> str:
    if not ev.warnings:
        return '<section id="warnings"><h2>Warnings</h2><p class="dim">None.</p></section>'
    parts = ['<section id="warnings"><h2>Warnings</h2>']
    facts = frozenset(f.path for f in ev.facts)
    for sev in SEVERITIES:
        items = [w for w in ev.warnings if w.severity == sev]
        if not items:
            continue
        parts.append(f'<h3>{sev.capitalize()} ({len(items)})</h3><ul class="warnings">')
        for w in items:
            parts.append(f'<li data-severity="{sev}"><span class="sev {sev}">{sev}</span>{e(w.message)}'
                         f"{_rule_link(w.rule, fired, w.message, facts)}</li>")
        parts.append("</ul>")
    parts.append("</section>")
    return "".join(parts)


# ----------------------------------------------------------------------------------- derivation tree


def _cited(c: Cited) -> str:
    text = f"{c.publisher} {c.ref}".strip() or c.id
    tip = c.title + (f" ({c.date})" if c.date else "")
    link = href(c.url)
    if link:
        return (f'<a href="{e(link)}" title="{e(tip)}" target="_blank" rel="noopener noreferrer" '
                f'data-source="{e(c.id)}">{e(text)}</a>')
    return f'<span title="{e(tip)}" data-source="{e(c.id)}">{e(text)}</span>'


def _source_cell(fu: FactUse, fs: FactSources | None) -> str:
    if fs is None or not fs.cited:
        return f'<span class="src">{e(fu.source or "unknown")}</span>'
    first, *rest = fs.cited
    out = _cited(first)
    if rest:
        out += ' <span class="dim">from</span> ' + ", ".join(_cited(c) for c in rest)
    return f'<span class="src">{out}</span>'


def _fact_value(fu: FactUse) -> str:
    unit = f" {fu.unit}" if fu.unit and fu.unit != "bool" else ""
    return f"{num(fu.value)}{unit}"


def _dates(fu: FactUse) -> str:
    out = f"as of {e(fu.as_of)}" if fu.as_of else ""
    known = getattr(fu, "known_at", None)
    if known:
        out += f", known {e(known)}"
    return out


class _Tree:
    def __init__(self, d: PageData) -> None:
        self.d = d
        self.facts = {f.path: f for f in d.evaluation.facts}
        self.fired = {f.rule: f for f in d.evaluation.fired}
        self.placed: set[str] = set()

    def fact(self, path: str, seen_value: Any = None) -> str:
        fu = self.facts.get(path)
        label = self.d.labels.get(path, "")
        if fu is None:
            shown = "" if seen_value is None else f" = {e(num(seen_value))}"
            return f'<li class="fact" data-path="{e(path)}"><code>{e(path)}</code>{shown} <span class="dim">' \
                   "(not among the evaluation's facts)</span></li>"
        return (f'<li class="fact" data-path="{e(path)}"><a href="#fact-{e(path)}"><code>{e(path)}</code></a> '
                f'<span class="dim">{e(label)}</span> = <b>{e(_fact_value(fu))}</b> '
                f'<span class="where">[{_source_cell(fu, self.d.sources.get(path))}, {_dates(fu)}]</span></li>')

    def rule(self, rule_id: str, depth: int = 0) -> str:
        f = self.fired.get(rule_id)
        if f is None:
            return f'<li><code>{e(rule_id)}</code> <span class="dim">(not a rule of the packs)</span></li>'
        first = rule_id not in self.placed
        self.placed.add(rule_id)
        anchor = f' id="rule-{e(rule_id)}"' if first else ""
        head = (f"<summary><span class=\"tag\">rule</span> <code>{e(f.rule)}</code> {e(f.title)} "
                f'<span class="where">{e(f.pack)}, {e(f.file)}:{f.line}</span>'
                + "".join(f'<span class="tag">{e(p)}</span>' for p in f.produced) + "</summary>")
        if not first:
            return (f'<li><details class="rule">{head}<ul><li><a href="#rule-{e(rule_id)}">shown above</a></li>'
                    "</ul></details></li>")
        return f'<li><details class="rule"{anchor}>{head}<ul>{self._rule_body(f, depth)}</ul></details></li>'

    def _rule_body(self, f: Fired, depth: int) -> str:
        parts: list[str] = []
        in_cmp: set[str] = set()
        for c in f.comparisons:
            paths = [p for p in dict.fromkeys(FACT_PATH.findall(c.text))]
            in_cmp.update(paths)
            cls = "holds" if c.holds else "undecided" if c.holds is None else "fails"
            mark = "holds" if c.holds else "undecided" if c.holds is None else "fails"
            parts.append(f'<li><details class="cmp"><summary><span class="tag {cls}">{mark}</span> '
                         f'<code>{e(c.text)}</code></summary><ul>'
                         + "".join(self.fact(p, f.facts.get(p)) for p in paths) + "</ul></details></li>")
        others = [p for p in f.facts if p not in in_cmp]
        if others:
            parts.append('<li><details class="cmp"><summary><span class="tag">reads</span> facts its messages '
                         "and ranges use</summary><ul>" + "".join(self.fact(p, f.facts[p]) for p in others)
                         + "</ul></details></li>")
        for u in f.signals_used:
            by = str(u.get("by"))
            parts.append(f'<li><span class="tag">signal</span> <code>{e(u.get("name"))}</code> '
                         f'({e(num(u.get("score")))}) from</li>')
            if depth < 8:
                parts.append(f"<li><ul>{self.rule(by, depth + 1)}</ul></li>")
        return "".join(parts)

    def render(self) -> str:
        ev = self.d.evaluation
        r = ev.rating_info
        parts = ['<section id="tree" class="tree"><h2>Derivation <span class="tools">'
                 '<button type="button" data-tree="open">expand all</button>'
                 '<button type="button" data-tree="close">collapse all</button></span></h2>'
                 '<p class="dim">rating &larr; signals &larr; rules &larr; comparisons &larr; facts. '
                 "Click a line to open it.</p>"]
        parts.append(f'<details open id="tree-rating"><summary><span class="tag">rating</span> <b>{e(ev.rating)}'
                     f"</b> (score {e(num(ev.score))}): {e(r.decided_by)}</summary><ul>")
        for s in sorted(ev.signals, key=lambda s: (-abs(s.score), s.name)):
            parts.append(f'<li><details class="signal"><summary><span class="tag">signal</span> '
                         f"<b>{s.score:+g}</b> <code>{e(s.name)}</code> <span class=\"where\">&larr; {e(s.rule)}</span>"
                         f"</summary><ul>{self.rule(s.rule)}</ul>"
                         "</details></li>")
        parts.append("</ul></details>")
        if ev.target:
            t = ev.target
            parts.append(f'<details id="tree-target"><summary><span class="tag">target</span> {e(t.currency)} '
                         f"{t.low:,.2f} - {t.high:,.2f}</summary><ul>{self.rule(t.rule)}</ul></details>")
        if ev.entries:
            parts.append('<details id="tree-entries"><summary><span class="tag">entries</span> '
                         f"{len(ev.entries)} horizon(s)</summary><ul>")
            for en in ev.entries:
                rng = "" if en.low is None or en.high is None else f" {en.low:,.2f} - {en.high:,.2f}"
                parts.append(f'<li><details><summary>{e(en.horizon)}: {e(en.advice)}{rng}</summary><ul>'
                             f"{self.rule(en.rule)}</ul></details></li>")
            parts.append("</ul></details>")
        rest = [f for f in ev.fired if f.rule not in self.placed]
        if rest:
            parts.append('<details id="tree-other"><summary><span class="tag">other rules fired</span> '
                         f"{len(rest)} (warnings, signals of score 0)</summary><ul>"
                         + "".join(self.rule(f.rule) for f in rest) + "</ul></details>")
        parts.append(_not_fired(ev))
        parts.append("</section>")
        return "".join(parts)


def _not_fired(ev: Evaluation) -> str:
    if not ev.not_fired:
        return ""
    rows = []
    for n in ev.not_fired:
        why = "; ".join(n.blocked_by) if n.blocked_by else ""
        if n.status == "not_evaluable" and n.missing:
            why = "needs " + ", ".join(n.missing) + (f"; {why}" if why else "")
        emits = ", ".join(f"{w.get('name')} {num(w.get('score'))}" for w in n.would_emit)
        rows.append(f'<tr><td><code>{e(n.rule)}</code><div class="where">{e(n.file)}:{n.line}</div></td>'
                    f"<td>{e(n.status.replace('_', ' '))}</td><td><code>{e(why)}</code></td><td>{e(emits)}</td></tr>")
    evaluable = sum(1 for n in ev.not_fired if n.status == "not_evaluable")
    return ('<details id="tree-not-fired"><summary><span class="tag">not fired</span> '
            f"{len(ev.not_fired)} rule(s), {evaluable} not evaluable</summary>"
            "<table><thead><tr><th>rule</th><th>status</th><th>what kept it</th><th>would emit</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table></details>")


# ----------------------------------------------------------------------------------- facts, checks


def _facts(d: PageData) -> str:
    ev = d.evaluation
    known = any(getattr(f, "known_at", None) for f in ev.facts)
    extra_keys = sorted({k for f in ev.facts for k in f.model_dump() if k not in KNOWN_FACT_FIELDS
                         and k != "known_at" and f.model_dump()[k] not in (None, "", [], {})})
    head = ("<tr><th>fact</th><th class=\"num\">value</th><th>unit</th><th>source</th><th>as of</th>"
            + ("<th>known</th>" if known else "") + "<th>how derived, other statements</th></tr>")
    rows = []
    for fu in ev.facts:
        fs = d.sources.get(fu.path)
        notes = []
        if fu.derived:
            notes.append(e(fu.derived))
        if fs is not None:
            for value, source, as_of in fs.alternatives:
                notes.append(f"also stated: {e(value)} ({e(source)}, {e(as_of)})")
        dump = fu.model_dump(mode="json")
        for k in extra_keys:
            v = dump.get(k)
            if v not in (None, "", [], {}):
                notes.append(f"{e(k)}: {e(flat(v))}")
        rows.append(f'<tr id="fact-{e(fu.path)}" data-path="{e(fu.path)}"><td><code>{e(fu.path)}</code>'
                    f'<div class="dim">{e(d.labels.get(fu.path, ""))}</div></td>'
                    f'<td class="num">{e(num(fu.value))}</td><td>{e(fu.unit if fu.unit != "bool" else "")}</td>'
                    f'<td class="source">{_source_cell(fu, fs)}</td><td class="num">{e(fu.as_of or "")}</td>'
                    + (f'<td class="num">{e(getattr(fu, "known_at", None) or "")}</td>' if known else "")
                    + f'<td class="how">{"<br>".join(notes)}</td></tr>')
    checks = ""
    if ev.fact_checks:
        crow = []
        for c in ev.fact_checks:
            stated = "; ".join(f"{num(s.get('value'))} ({s.get('source')}, {s.get('as_of')})" for s in c.stated)
            crow.append(f"<tr><td><code>{e(c.path)}</code></td><td class=\"num\">{e(num(c.derived))}</td>"
                        f"<td>{e(stated)}</td><td class=\"{'holds' if c.agree else 'fails'}\">"
                        f"{'agree' if c.agree else 'disagree'}</td><td class=\"how\">{e(c.how)}</td></tr>")
        checks = ("<h3>Stated facts checked against the price history</h3><table><thead><tr><th>fact</th>"
                  '<th class="num">from prices</th><th>stated</th><th></th><th>how</th></tr></thead><tbody>'
                  + "".join(crow) + "</tbody></table>")
    return (f'<section id="facts"><h2>Facts ({len(ev.facts)})</h2><p class="dim">Every fact the evaluation '
            "could read, with its source (linked where the source has an address) and dates. Warnings from "
            "<code>facts.*</code> are about these facts.</p><table id=\"facts-table\"><thead>" + head
            + "</thead><tbody>" + "".join(rows) + "</tbody></table>" + checks + "</section>")


# ----------------------------------------------------------------------------------- sensitivity


def _sensitivity(d: PageData, fired: set[str]) -> str:
    ev = d.evaluation
    by_path: dict[str, list[Flip]] = {}
    for f in d.flips:
        by_path.setdefault(f.path, []).append(f)

    def nearest(flips: list[Flip]) -> float:
        return min((abs(f.change_pct) for f in flips if f.change_pct is not None), default=float("inf"))

    ordered = sorted(by_path.items(), key=lambda kv: (nearest(kv[1]), kv[0]))
    if not ordered:
        return ('<section id="sensitivity"><h2>What would change the rating</h2><p class="dim">No single fact '
                f"within the rules' thresholds changes the rating ({d.sensitivity_evaluations} "
                "re-evaluations).</p></section>")
    rows, lines = [], []
    for path, flips in ordered[:MAX_SENSITIVITY_ROWS]:
        down = next((f for f in flips if f.direction == "down"), None)
        up = next((f for f in flips if f.direction == "up"), None)
        label = f"{flips[0].label} ({num(round(flips[0].value, 4))})"
        anchor = f"fact-{path}" if any(fu.path == path for fu in ev.facts) else "sensitivity"
        rows.append(TornadoRow(label, down.change_pct if down else None, down.rating if down else "",
                               up.change_pct if up else None, up.rating if up else "", anchor))
    for path, flips in ordered:
        for f in flips:
            verb = "rises" if f.direction == "up" else "falls"
            edge = "to" if f.inclusive else ("above" if f.direction == "up" else "below")
            lines.append(f"<tr><td>{e(f.label)} <code>{e(path)}</code></td>"
                         f'<td class="num">{e(num(round(f.value, 6)))}</td>'
                         f"<td>{verb} {edge} <b>{e(num(round(f.boundary, 6)))}</b></td>"
                         f'<td class="num">{e(pct(f.change_pct))}</td><td><b>{e(f.rating)}</b></td>'
                         f"<td>{_rule_link(f.rule, fired) if f.rule in fired else f'<code>{e(f.rule)}</code>'}"
                         "</td></tr>")
    title = f"{ev.name} ({ev.symbol}): how far each fact must move for the rating ({ev.rating}) to change"
    return ('<section id="sensitivity"><h2>What would change the rating</h2><p class="dim">The facts nearest to '
            "changing the rating: each boundary is solved from the rules' comparisons and confirmed by "
            f"re-evaluating ({d.sensitivity_evaluations} re-evaluations). The share price moves with the facts "
            "linked to it (PE, DCF-vs-price).</p>"
            + tornado(rows, title)
            + '<table><thead><tr><th>fact</th><th class="num">now</th><th>the rating changes if it</th>'
            '<th class="num">change</th><th>to</th><th>rule</th></tr></thead><tbody>' + "".join(lines)
            + "</tbody></table></section>")


# ----------------------------------------------------------------------------------- footer, page


def _footer(d: PageData) -> str:
    ev = d.evaluation
    code = ev.symbol.partition(".")[0]
    window = "" if d.window == DEFAULT_WINDOW else f" --window {d.window}"
    return f"""<footer id="provenance"><div class="in"><h2>Run and replay</h2>
<dl class="kv extra"><dt>run id</dt><dd id="run-id">{e(ev.run_id)}</dd>
<dt>ruleset hash</dt><dd id="ruleset-hash">{e(ev.ruleset_hash)}</dd>
<dt>facts hash</dt><dd id="facts-hash">{e(ev.facts_hash)}</dd>
<dt>engine</dt><dd>verdict {e(ev.engine_version)}</dd>
<dt>facts as of</dt><dd>{e(ev.as_of)}</dd>
<dt>chart window</dt><dd>{d.window} trading days</dd></dl>
<p>A recorded run can be checked and shown again from the audit log, which keeps the exact rule and fact
files it used:</p>
<pre class="cmd">verdict audit replay {e(ev.run_id)}      # re-evaluate from the stored files: identical, or a diff
verdict audit show {e(ev.run_id)}        # the derivation tree as text
verdict audit report {e(ev.run_id)}{window} --out {e(code)}.html   # this page again, byte for byte</pre>
<p class="disclaimer">{e(ev.disclaimer)}</p></div></footer>"""


def render_page(d: PageData) -> str:
    ev = d.evaluation
    fired = {f.rule for f in ev.fired}
    body = "\n".join([_header(d), "<main>", _chart(d), _entries(d, fired),
                      quality_fields.valuations(getattr(ev, "valuations", None), fired), _warnings(ev, fired),
                      _Tree(d).render(), _facts(d), _sensitivity(d, fired), "</main>", _footer(d)])
    return _doc(f"{ev.name} ({ev.symbol}): {ev.rating} - verdict", body, ev.engine_version)


# ----------------------------------------------------------------------------------- index


def render_index(evs: list[Evaluation], prices: list[FactUse | None], aliases: list[list[str]], pages: list[str]
                 ) -> str:
    """A screen's page: one sortable row per symbol, linking to its page."""
    rows = []
    for ev, price, alias, page in zip(evs, prices, aliases, pages, strict=True):
        t = ev.target
        up = None
        if t and price is not None and price.value:
            up = ((t.low + t.high) / 2 / float(price.value) - 1) * 100
        warn = ev.warnings[0] if ev.warnings else None
        rows.append(
            f'<tr data-symbol="{e(ev.symbol)}"><td><a href="{e(page)}">{e(ev.symbol)}</a></td><td>{e(ev.name)}'
            + "".join(f' <span lang="zh-CN">{e(a)}</span>' for a in alias) + "</td>"
            f'<td data-v="{_rank(ev)}"><span class="rating-chip r{_rank(ev)}">{e(ev.rating)}</span></td>'
            f'<td class="num" data-v="{ev.score:g}">{e(num(ev.score))}</td>'
            f'<td class="num" data-v="{t.low if t else ""}">{f"{t.low:,.2f} - {t.high:,.2f}" if t else ""}</td>'
            f'<td class="num" data-v="{"" if up is None else f"{up:.4f}"}">{pct(up)}</td>'
            f'<td data-v="{SEVERITIES.index(warn.severity) if warn else 9}">'
            + (f'<span class="sev {e(warn.severity)}">{e(warn.severity)}</span>{e(warn.message)}' if warn else "")
            + f'</td><td class="num">{e(ev.as_of or "")}</td></tr>')
    first = evs[0] if evs else None
    scale = (f"Ratings on the {e(first.rating_info.scale)} (benchmark {e(first.rating_info.benchmark)}, horizon "
             f"{e(first.rating_info.horizon)}). Upside: from the stated price to the middle of the target range.")\
        if first else ""
    body = f"""<header class="hdr"><div class="in"><h1>verdict: {len(evs)} symbol(s)</h1>
<p class="sub">{scale} Click a column to sort; a symbol opens its page.</p>
{f'<p class="disclaimer">{e(first.disclaimer)}</p>' if first else ""}</div></header>
<main><table class="sortable" id="index"><thead><tr><th>symbol</th><th>name</th><th data-type="number">rating</th>
<th class="num" data-type="number">score</th><th class="num" data-type="number">target</th>
<th class="num" data-type="number">upside</th><th data-type="number">first warning</th><th class="num">as of</th></tr>
</thead><tbody>
{chr(10).join(rows)}
</tbody></table></main>"""
    return _doc(f"verdict: {len(evs)} symbol(s)", body, first.engine_version if first else "")
