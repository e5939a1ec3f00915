"""What ran, as recorded: a run's outcome and its captured trace, before any rendering.

A recorded evaluation stores this, not the rendered tree: the outcome (rating, score, target,
entries, warnings, coverage, fragility, valuations, signals), the resolved facts with their sources
(as the output lists them, plus what evaluating them needs: bounds and which values are dates), what
was asserted into durable_rules and, for each firing in order, the facts it matched. Rendering
(engine/render.py: the comparisons of every rule, what blocked the others, the cross-check) is a pure
function of this and of the rules it ran on, so it is done when the trace is read, from the record's
rule snapshot, and gives the same bytes as rendering when it ran: the renderer only ever reads this
form (a live run is converted to it first), which is plain JSON data, so storing and reading it back
changes nothing.

Most of a firing's matched facts are the facts the run asserted, so a firing stores which of them it
matched rather than a copy. At 200 generated rules a trace is ~9 KB of JSON against ~60 KB rendered;
for a stock with a price history most of either is the facts' provenance.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Any

from .formulas import provenance_of
from .jsontext import compact

if TYPE_CHECKING:
    from .pipeline import Run

FORMAT = "verdict.trace/1"
_MARK = re.compile(r'"format"\s*:\s*"' + re.escape(FORMAT) + '"')
FACT_KINDS = ("stock", "sector", "commodity")


def is_trace(text: str) -> bool:
    """Whether a stored output is a trace (this module) rather than a rendered evaluation. The marker
    is a top-level key right after the outcome's head; a quote inside any string value is escaped, so
    the marker cannot appear inside one (JSON's optional spaces are allowed: a trace rewritten by
    another JSON writer is still one)."""
    return _MARK.search(text, 0, 4096) is not None


def _iso(d: dt.date | None) -> str | None:
    return None if d is None else d.isoformat()


def _plain(v: Any) -> Any:
    return v.isoformat() if isinstance(v, dt.date) else v


def of_run(run: Run, fragile_facts: bool = True) -> dict[str, Any]:
    """The trace of a run, as plain JSON data (what `dumps` writes and `loads` reads back)."""
    ws, sf, res = run.workspace, run.facts, run.resolution
    file = sf.stock.file
    catalog, sources = ws.facts.catalog, ws.facts.sources
    cites = _cites(ws)
    facts: list[dict[str, Any]] = []
    bounds: dict[str, dict[str, Any]] = {}
    dates: list[str] = []
    for path, c in sorted(sf.chosen.items()):
        fv = c.value
        if fv.is_point:
            value = fv.value
            if isinstance(value, dt.date):
                dates.append(path)
                value = value.isoformat()
        else:
            value = fv.describe()
            bounds[path] = {b: v for b in ("gt", "gte", "lt", "lte") if (v := getattr(fv, b)) is not None}
        unit = fv.unit
        if not unit:
            spec = catalog.spec(path)
            unit = spec.unit if spec else ""
        cite = cites.get(fv.source)
        if cite is None:
            src = sources.get(fv.source)
            cite = cites[fv.source] = f"{src.publisher} {src.ref}".strip() if src else fv.source
        use: dict[str, Any] = {"path": path, "value": value, "unit": unit, "as_of": fv.as_of.isoformat(),
               "known_at": fv.known.isoformat(), "source": cite, "derived": c.derived}
        provenance = provenance_of(c.provenance)
        if provenance is not None:
            use["provenance"] = provenance.model_dump(mode="json")
        facts.append(use)
    return {
        "symbol": file.symbol, "name": file.name, "sector": file.sector, "as_of": _iso(sf.as_of),
        "rating": res.rating.name, "score": res.score, "format": FORMAT,
        "rating_info": res.rating.model_dump(mode="json"),
        "target": None if res.target is None else res.target.model_dump(mode="json"),
        "entries": [e.model_dump(mode="json") for e in res.entries],
        "warnings": [w.model_dump(mode="json") for w in res.warnings],
        **run.outcome(fragile_facts),
        "run_id": run.run_id, "ruleset_hash": ws.compiled.digest, "facts_hash": sf.digest(sources),
        "engine_version": _version(), "disclaimer": ws.book.policy.disclaimer,
        "date": _iso(sf.date), "facts": facts, "bounds": bounds, "dates": dates,
        "unavailable": dict(sf.unavailable),
        "fact_checks": [c.model_dump(mode="json") for c in sf.checks],
        **_firings(run),
    }


def _cites(ws: Any) -> dict[str, str]:
    """How each source is cited in the output (publisher and reference), kept per workspace."""
    cites: dict[str, str] | None = ws.__dict__.get("_cites")
    if cites is None:
        cites = ws.__dict__["_cites"] = {}
    return cites


def _firings(run: Run) -> dict[str, Any]:
    """What was asserted (once) and what each firing matched: the name of an asserted fact where it
    matched that fact exactly as asserted (always, so far), else the fact as durable_rules gave it."""
    compiled = run.workspace.compiled
    asserted_text = run.asserted
    asserted = {kind: json.loads(text) for kind, text in asserted_text.items()}
    with_sid = {kind: run.sid_head + text[1:] for kind, text in asserted_text.items()}
    firings: list[list[Any]] = []
    parsed: dict[str, dict[str, Any]] = {}  # a signal's text -> its fields: each consumer's message repeats it
    for f in run.firings:
        aliases = compiled.rules[f.rule].aliases
        matched = _read_message(f.message, aliases, with_sid, parsed)
        if matched is None:  # not the shape durable gives a plain `all` rule: read all of it
            matched = {}
            for alias, fact in f.matched.items():
                kind = aliases.get(alias, "")
                matched[alias] = kind if kind in asserted and fact == asserted[kind] else fact
        firings.append([f.rule, matched])
    return {"asserted": asserted, "firings": firings}


def _read_message(message: str, aliases: dict[str, str], with_sid: dict[str, str],
                  parsed: dict[str, dict[str, Any]]) -> dict[str, Any] | None:
    """A firing's matched facts read off durable's message `{"KEY":{"alias":{fact},...}}`, in the rule's
    alias order: an asserted fact is recognised by its text (not parsed again), any other (a signal,
    a phase marker) is a flat object parsed alone, once per run (`parsed`, by its text). None when the
    message has another shape."""
    pos = message.index('"', 2) + 3
    matched: dict[str, Any] = {}
    for alias, kind in aliases.items():
        label = f'"{alias}":'
        if not message.startswith(label, pos):
            return None
        pos += len(label)
        body = with_sid.get(kind)
        if body is not None:
            if not message.startswith(body, pos):
                return None
            matched[alias] = kind
            pos += len(body)
        else:
            end = message.find("}", pos) + 1
            if not end or message.find("{", pos + 1, end) != -1:
                return None
            text = message[pos:end]
            fact = parsed.get(text)
            if fact is None:
                fact = parsed[text] = json.loads(text)
                fact.pop("sid", None)
            matched[alias] = dict(fact)
            pos = end
        if message.startswith(",", pos):
            pos += 1
    return matched if message[pos:] == "}}" else None


def dumps(trace: dict[str, Any]) -> str:
    """The stored text: compact JSON, the outcome's head first (listings read only that), as
    `json.dumps(trace, ensure_ascii=False, separators=(",", ":"), allow_nan=False)` writes it
    (engine/jsontext.py: half the time)."""
    return compact(trace)


def loads(text: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(text)
    if data.get("format") != FORMAT:
        raise ValueError(f"not a trace of format {FORMAT}")
    return data


def _version() -> str:
    from . import __version__

    return __version__
