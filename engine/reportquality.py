"""How far a rating can be trusted, on the report page: evidence coverage, fragility, the steps that
decided it, and the valuation methods behind the target, each rendered when the evaluation carries it.

These fields come from the rating stage and may be absent (older records, other engines): every
function here takes what the evaluation holds, as plain data, and returns '' when there is nothing.
A shape it does not know is still shown, as text, rather than dropped.
"""

from __future__ import annotations

from typing import Any

from .htmltext import data, e, flat, num, pct


def _rule(rule: Any, fired: set[str]) -> str:
    rid = str(rule)
    if rid in fired:
        return f'<a class="rule-link" href="#rule-{e(rid)}">{e(rid)}</a>'
    return f'<code>{e(rid)}</code>'


def coverage(value: Any) -> str:
    """The header line and, under it, the evidence families (which were present, what was missing)."""
    c = data(value)
    if c is None:
        return ""
    if not isinstance(c, dict) or not isinstance(c.get("families"), list):
        return f'<dt>coverage</dt><dd id="coverage">{e(flat(c))}</dd>'
    head = f"{float(c.get('percent', 0)):.0f}% of the rules that read facts could be evaluated"
    missing = c.get("missing") or []
    if missing:
        head += f"; no evidence on {e(', '.join(map(str, missing)))}"
    rows = []
    for f in c["families"]:
        if not isinstance(f, dict):
            continue
        gaps = ", ".join(map(str, f.get("missing") or []))
        rows.append(f'<tr data-family="{e(f.get("family", ""))}"><td>{e(f.get("label") or f.get("family", ""))}</td>'
                    f'<td class="num">{e(num(f.get("evaluable", "")))}/{e(num(f.get("rules", "")))}</td>'
                    f'<td class="num">{e(num(f.get("fired", "")))}</td>'
                    f'<td class="{"holds" if f.get("present") else "fails"}">{"yes" if f.get("present") else "no"}</td>'
                    f'<td class="how">{e(gaps)}</td></tr>')
    needs = c.get("needs") or []
    table = ('<details><summary class="dim">evidence by family</summary><table><thead><tr><th>family</th>'
             '<th class="num">evaluable</th><th class="num">fired</th><th>present</th><th>missing facts</th></tr>'
             "</thead><tbody>" + "".join(rows) + "</tbody></table>"
             + (f'<p class="dim">a better rating would need: {e("; ".join(map(str, needs)))}</p>' if needs else "")
             + "</details>")
    return f'<dt>coverage</dt><dd id="coverage">{head}{table}</dd>'


def fragility(value: Any, fired: set[str]) -> str:
    """Robust or fragile, why, and the facts within the policy's margin of a rating change."""
    f = data(value)
    if f is None:
        return ""
    if not isinstance(f, dict) or "fragile" not in f:
        return f'<dt>fragility</dt><dd id="fragility">{e(flat(f))}</dd>'
    fragile = bool(f.get("fragile"))
    parts = [f'<span class="tag {"fails" if fragile else "holds"}">{"fragile" if fragile else "robust"}</span>']
    notes = [str(n) for n in f.get("notes") or []]
    if notes:
        parts.append(" " + e("; ".join(notes)))
    items = []
    for x in f.get("facts") or []:
        if isinstance(x, dict):
            items.append(f'<li>{e(x.get("label") or x.get("path", ""))} <code>{e(x.get("path", ""))}</code> '
                         f'{e(num(x.get("value", "")))} &rarr; {e(num(x.get("threshold", "")))} '
                         f'({e(pct(x.get("change_pct")))}): {e(x.get("rating", ""))} '
                         f'{_rule(x.get("rule", ""), fired)}</li>')
    if items:
        parts.append('<ul class="fragile-facts">' + "".join(items) + "</ul>")
    if f.get("facts_checked") is False:
        parts.append('<div class="dim">only the score was checked (no trace)</div>')
    return f'<dt>fragility</dt><dd id="fragility">{"".join(parts)}</dd>'


def steps(value: Any) -> str:
    """How the rating was reached, step by step (score band, overrides, evidence, upside)."""
    items = [str(s) for s in data(value) or []]
    if not items:
        return ""
    return '<ol class="steps dim">' + "".join(f"<li>{e(s)}</li>" for s in items) + "</ol>"


def valuations(value: Any, fired: set[str]) -> str:
    """Each valuation method that could be computed: its value and range, upside, how, and inputs."""
    rows = []
    for item in data(value) or []:
        v = data(item)  # a list of models (an Evaluation's own) or of plain dicts (a record's JSON)
        if not isinstance(v, dict):
            continue
        inputs = ", ".join(f"{k} {num(x)}" for k, x in (v.get("inputs") or {}).items())
        ref = v.get("reference")
        rows.append(
            f'<tr data-method="{e(v.get("method", ""))}"><td>{e(v.get("title") or v.get("method", ""))}'
            f'<div class="where">{e(v.get("kind", ""))}, {e(v.get("file", ""))}:{e(v.get("line", ""))}</div></td>'
            f'<td class="num">{e(num(v.get("value", "")))}</td>'
            f'<td class="num">{e(num(v.get("low", "")))} - {e(num(v.get("high", "")))}</td>'
            f'<td class="num">{e(pct(v.get("upside_pct")))}</td>'
            f'<td>{"target" if v.get("used") else "cross-check"}</td>'
            f'<td class="how">{e(v.get("how", ""))}'
            + (f"<br>inputs: {e(inputs)}" if inputs else "")
            + (f"<br>stated elsewhere: {e(flat(ref))}" if ref else "")
            + "</td></tr>")
    if not rows:
        return ""
    return ('<section id="valuations"><h2>Valuation methods</h2><table><thead><tr><th>method</th>'
            '<th class="num">value</th><th class="num">range</th><th class="num">upside</th><th>role</th>'
            "<th>how, from which facts</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></section>")
