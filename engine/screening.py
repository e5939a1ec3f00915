"""A screen over evaluated symbols: keep those an expression holds for (--where), show chosen columns,
sort by any of them, keep the top N.

The filter is the rule expression language, parsed and type-checked by expr.py exactly as a `when`
is, over each symbol's resolved facts plus the names of its outcome (rating, score, target, upside,
...), and evaluated by expr.truth. It filters outcomes after durable_rules has matched; it never
matches rules. It reads an unrendered Run, so a screen costs the evaluation, not the trace.
"""

from __future__ import annotations

import datetime as dt
import io
import tokenize
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import expr
from .errors import Location, LookupFailure, Problem, did_you_mean
from .model import HORIZONS, Catalog, EntryOut, FactSpec, FactValue

if TYPE_CHECKING:
    from pathlib import Path

    from .batch import Failure
    from .executors import ExecutorSpec
    from .load import RuleBook
    from .model import Outcome
    from .pipeline import Run, Workspace

PREFIX = "outcome."  # the namespace outcome names take inside the expression tree (never shown)


def _entry(run: Run, horizon: str) -> EntryOut | None:
    return next((e for e in run.resolution.entries if e.horizon == horizon), None)


def _target_mid(run: Run) -> float | None:
    """The valuation method's point value, else the middle of a rule's target range."""
    t = run.resolution.target
    if t is None:
        return None
    return t.value if t.value is not None else round((t.low + t.high) / 2, 4)


def _price(run: Run) -> float | None:
    for path in ("stock.price", "stock.close"):
        c = run.facts.chosen.get(path)
        if c is not None and isinstance(c.value.value, (int, float)) and not isinstance(c.value.value, bool):
            return float(c.value.value)
    return None


def _upside(run: Run) -> float | None:
    t = run.resolution.target
    if t is not None and t.upside_pct is not None:  # the valuation method's, against the price it names
        return t.upside_pct
    mid, price = _target_mid(run), _price(run)
    return None if mid is None or not price else round((mid / price - 1) * 100, 2)


def _entry_text(e: EntryOut | None) -> str | None:
    if e is None:
        return None
    if e.low is None and e.high is None:
        return e.advice
    return f"{e.advice} {'' if e.low is None else f'{e.low:.2f}'}-{'' if e.high is None else f'{e.high:.2f}'}"


def _entry_value(horizon: str, part: str) -> Callable[[Run], Any]:
    def get(run: Run) -> Any:
        e = _entry(run, horizon)
        if part == "text":
            return _entry_text(e)
        return None if e is None else getattr(e, part)

    return get


def _entries() -> dict[str, tuple[str, str, Callable[[Run], Any]]]:
    out: dict[str, tuple[str, str, Callable[[Run], Any]]] = {}
    for h in HORIZONS:
        out[f"{h}_entry"] = ("text", f"{h}-term entry: advice and range", _entry_value(h, "text"))
        out[f"{h}_entry_low"] = ("number", f"{h}-term entry range, low", _entry_value(h, "low"))
        out[f"{h}_entry_high"] = ("number", f"{h}-term entry range, high", _entry_value(h, "high"))
    return out


# name -> (type, description, value from a run). The names --where and --columns know beside facts.
OUTCOME: dict[str, tuple[str, str, Callable[[Run], Any]]] = {
    "symbol": ("text", "symbol with exchange suffix", lambda r: r.symbol),
    "name": ("text", "company name", lambda r: r.facts.stock.file.name),
    "sector": ("text", "sector id", lambda r: r.facts.stock.file.sector),
    "as_of": ("date", "evaluation date", lambda r: r.facts.as_of),
    "rating": ("text", "the rating", lambda r: r.rating),
    "score": ("number", "summed signal score", lambda r: r.score),
    "target": ("number", "the target value (a valuation method's point, else the range's middle)", _target_mid),
    "target_low": ("number", "target range, low", lambda r: getattr(r.resolution.target, "low", None)),
    "target_high": ("number", "target range, high", lambda r: getattr(r.resolution.target, "high", None)),
    "target_range": ("text", "target range as text", lambda r: None if r.resolution.target is None else
                     f"{r.resolution.target.low:.2f}-{r.resolution.target.high:.2f}"),
    "upside": ("number", "% from the price to the target value (the valuation method's upside)", _upside),
    "coverage": ("number", "% of the fact-reading rules whose facts were all present",
                 lambda r: None if r.resolution.coverage is None else r.resolution.coverage.percent),
    "fragile": ("bool", "one signal from a band edge that changes the rating (a screen checks the score only)",
                lambda r: r.fragility(facts=False).fragile),
    "warnings": ("number", "number of warnings", lambda r: len(r.resolution.warnings)),
    "warning": ("text", "the first warning (most severe first)",
                lambda r: r.resolution.warnings[0].message if r.resolution.warnings else None),
    "warning_rule": ("text", "the rule of the first warning",
                     lambda r: r.resolution.warnings[0].rule if r.resolution.warnings else None),
    "fired": ("number", "number of rules fired", lambda r: len(r.firings)),
    **_entries(),
    "run_id": ("text", "run id (in the audit log when recorded)", lambda r: r.run_id),
}

# Outcome names that are percentages, and how tables write them (as `verdict evaluate SYMBOL` does).
PERCENT = {"upside": "{:+.1f}%", "coverage": "{:.0f}%"}

# What a screen shows when no --columns are given but one table is wanted (Markdown).
DEFAULT_COLUMNS = ("symbol", "name", "rating", "score", "target_range", "upside", "warnings", "as_of")


@dataclass(frozen=True)
class Column:
    """One column of a screen: the header as the user wrote it, and what it reads."""

    header: str
    key: str  # an OUTCOME name, a fact path, or signal.NAME
    type: str  # number | text | bool

    @property
    def percent(self) -> str | None:
        """How a table writes this column's number as a percentage ("+37.5%"), or None: a plain number.
        Machine formats (CSV, JSON) keep the number."""
        return PERCENT.get(self.key)

    def value(self, run: Run) -> Any:
        if self.key in OUTCOME:
            v = OUTCOME[self.key][2](run)
            return v.isoformat() if isinstance(v, dt.date) else v
        if self.key.startswith("signal."):
            scores = [s.score for s in run.resolution.signals if s.name == self.key[7:]]
            return sum(scores) if scores else None
        c = run.facts.chosen.get(self.key)
        if c is None:
            return None
        v = c.value
        if v.is_point:
            return v.value.isoformat() if isinstance(v.value, dt.date) else v.value
        return v.describe()  # known only as a bound: "> 140"


@dataclass(frozen=True)
class SortKey:
    column: Column
    descending: bool


def _problem(code: str, message: str, hint: str, option: str, col: int = 0) -> LookupFailure:
    return LookupFailure([Problem(Location(option, 1 if col else 0, col), code, message, hint)])


def column(name: str, catalog: Catalog, signals: Sequence[str], option: str = "--columns") -> Column:
    """What a column name means: an outcome name, a fact path (stock.pe_ttm), a fact's short name when
    only one namespace has it (pe_ttm), or signal.NAME (its summed score)."""
    text = name.strip()
    if text in OUTCOME:
        return Column(text, text, OUTCOME[text][0])
    if text.startswith("signal."):
        if text[7:] in signals:
            return Column(text, text, "number")
        raise _problem("unknown-column", f"no rule emits a signal '{text[7:]}'.",
                       did_you_mean(text[7:], list(signals), prefix="signal.") or "Signals are the names in the "
                       "rules' `then: signal:`.", option)
    spec = catalog.spec(text)
    if spec is not None:
        return Column(text, text, spec.type)
    matches = [p for p in catalog.paths() if p.partition(".")[2] == text]
    if len(matches) == 1:
        found = catalog.spec(matches[0])
        assert found is not None
        return Column(text, matches[0], found.type)
    if len(matches) > 1:
        raise _problem("ambiguous-column", f"'{text}' is a fact of several namespaces "
                       f"({', '.join(matches)}).", "Write the full path, e.g. " + matches[0] + ".", option)
    names = [*OUTCOME, *catalog.paths(), *{p.partition(".")[2] for p in catalog.paths()}]
    raise _problem("unknown-column", f"unknown column '{text}'.",
                   did_you_mean(text, names) or "Columns are outcome names (" + ", ".join(
                       list(OUTCOME)[:9]) + ", ...), fact paths such as stock.pe_ttm, or signal.NAME.", option)


def book_signals(book: RuleBook) -> list[str]:
    """Every signal some rule of the book emits (what signal.NAME may name)."""
    return sorted({s.name for r in book.rules for s in r.rule.then.signals()})


def screen_catalog(catalog: Catalog) -> Catalog:
    """The fact catalog plus the outcome names, under a namespace the expression never shows."""
    outcome = {name: FactSpec.model_construct(type=t, label=label, unit="", family="reference",  # type: ignore[arg-type]
                                              bounds=False, price_link="none", description=label)
               for name, (t, label, _) in OUTCOME.items()}
    namespaces: dict[Any, dict[str, FactSpec]] = {**catalog.namespaces, "outcome": outcome}
    return Catalog.model_construct(catalog=catalog.catalog, namespaces=namespaces)


def _with_outcome_names(text: str) -> tuple[str, list[tuple[int, int]]]:
    """`rating == "Buy"` -> `outcome.rating == "Buy"`, and where each name was (line, col), so that
    errors point at the user's text. Names after a dot (stock.name) or before one are left alone."""
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(text).readline))
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return text, []  # the parser reports the syntax error at its place
    spots = []
    for i, tok in enumerate(tokens):
        if tok.type != tokenize.NAME or tok.string not in OUTCOME:
            continue
        before = tokens[i - 1].string if i else ""
        after = tokens[i + 1].string if i + 1 < len(tokens) else ""
        if before != "." and after not in (".", "("):
            spots.append(tok.start)
    lines = text.split("\n")
    for line, col in reversed(spots):
        lines[line - 1] = lines[line - 1][:col] + PREFIX + lines[line - 1][col:]
    return "\n".join(lines), spots


def _original_col(line: int, col: int, spots: list[tuple[int, int]]) -> int:
    """A column of the rewritten text as a column of the user's."""
    shift = 0
    for n, spot_col in enumerate(c for spot_line, c in spots if spot_line == line):
        start = spot_col + n * len(PREFIX)
        if col >= start + len(PREFIX):
            shift += len(PREFIX)
        elif col >= start:
            return spot_col
    return col - shift


def _plain(text: str) -> str:
    return text.replace(PREFIX, "")


def parse_where(text: str, catalog: Catalog, signals: Sequence[str]) -> expr.Node:
    """Parse and type-check a --where expression as a rule condition; errors name the column."""
    source, spots = _with_outcome_names(text)
    env = expr.TypeEnv(screen_catalog(catalog), set(signals))
    try:
        return expr.check_condition(source, env)
    except expr.ExprError as exc:
        col = _original_col(exc.pos.line, exc.pos.col, spots)
        hint = _plain(exc.hint)
        tail = text.rstrip().rsplit(None, 1)[-1] if text.strip() else ""
        if exc.code == "syntax" and col == 0 and "\n" not in text.strip() and (
                tail in ("and", "or", "not", "in") or tail[-1:] in "=<>+-*/(,"):
            col = len(text.rstrip())  # Python places "a == 1 and" at column 0; the mistake is the end
            exc.message = f"the expression ends after `{tail}`, where more was expected."
        if exc.code == "unknown-name":
            word = _plain(exc.message).split("`")[1] if "`" in exc.message else ""
            facts = [p for p in catalog.paths() if p.partition(".")[2] == word]
            hint = (f"Write the fact's full path: {' or '.join(facts)}." if facts else
                    did_you_mean(word, list(OUTCOME)) or "Names: " + ", ".join(OUTCOME) +
                    "; facts are written with their namespace (stock.pe_ttm), signals as signal.NAME.")
        elif exc.code == "unknown-fact" and exc.message.startswith("unknown namespace"):
            hint = hint.replace("'outcome', ", "").replace("outcome, ", "")
        raise LookupFailure([Problem(Location("--where", exc.pos.line, col + 1), exc.code,
                                     _plain(exc.message), hint, input=text)]) from None


def _sort_keys(text: str, catalog: Catalog, signals: Sequence[str]) -> list[SortKey]:
    keys = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, _, direction = part.partition(":")
        col = column(name, catalog, signals, "--sort")
        if direction not in ("", "asc", "desc"):
            raise _problem("bad-sort", f"'{part}': the direction must be asc or desc.",
                           "Example: --sort pe_ttm:asc,score.", "--sort")
        # natural order: ratings best first, numbers largest first, text A-Z
        natural = col.type == "number" or col.key == "rating"
        keys.append(SortKey(col, natural if not direction else direction == "desc"))
    return keys


@dataclass
class Screen:
    """What a screen keeps, shows and in which order. Built once, used in every worker process."""

    where: expr.Node | None = None
    where_text: str = ""
    columns: list[Column] = field(default_factory=list)
    sort: list[SortKey] = field(default_factory=list)
    top: int | None = None
    reads_signals: bool = False
    outcome_names: tuple[str, ...] = ()  # the outcome names the expression reads

    @classmethod
    def build(cls, catalog: Catalog, signals: Sequence[str], *, where: str | None = None,
              columns: str | None = None, sort: str = "rating", top: int | None = None) -> Screen:
        node = parse_where(where, catalog, signals) if where else None
        cols = [column(c, catalog, signals) for c in columns.split(",") if c.strip()] if columns else []
        if columns is not None and not cols:
            raise _problem("no-columns", "no columns given.", "Example: --columns rating,score,pe_ttm,upside.",
                           "--columns")
        if cols and not any(c.key == "symbol" for c in cols):
            cols.insert(0, Column("symbol", "symbol", "text"))  # a row must say whose it is
        keys = _sort_keys(sort, catalog, signals)
        if not any(k.column.key == "symbol" for k in keys):
            keys.append(SortKey(Column("symbol", "symbol", "text"), False))  # a stable, repeatable order
        names = tuple(p[len(PREFIX):] for p in expr.fact_paths(node) if p.startswith(PREFIX)) if node else ()
        return cls(node, where or "", cols, keys, top, bool(node and expr.signal_refs(node)), names)

    @property
    def needs_rows(self) -> bool:
        """Whether outcomes need values beyond their summary (chosen columns, or a sort by a fact)."""
        return bool(self.columns) or any(k.column.key not in ("rating", "score", "symbol") for k in self.sort)

    def keep(self, run: Run) -> bool:
        """Whether the --where expression holds (true, not false or unknown: a missing fact excludes)."""
        if self.where is None:
            return True
        from .resolve import signal_env

        facts = run.facts.values()
        for name in self.outcome_names:
            v = OUTCOME[name][2](run)
            if v is not None:  # absent (no target, say): the comparison is unknown and the symbol left out
                facts[PREFIX + name] = FactValue.model_construct(value=v, as_of=dt.date.min, source="outcome")
        env = expr.EvalEnv(facts, signal_env(run.resolution.signals) if self.reads_signals else {})
        return expr.truth(self.where, env) is True

    def row(self, run: Run) -> dict[str, Any]:
        """The values of the columns and sort keys, by column key."""
        wanted = {c.key: c for c in self.columns} | {k.column.key: k.column for k in self.sort}
        return {key: col.value(run) for key, col in wanted.items()}

    def order(self, outcomes: list[Outcome], scale: Sequence[str]) -> list[Outcome]:
        """Sorted by the keys (missing values last in every direction), then cut to --top."""
        ranks = {name: i for i, name in enumerate(scale)}
        items = list(outcomes)
        for key in reversed(self.sort):
            def value(o: Outcome, key: SortKey = key) -> Any:
                k = key.column.key
                v = o.row[k] if k in o.row else getattr(o.summary, k, None)
                if k == "rating":
                    return None if v is None else -ranks.get(v, len(ranks))  # best first is "descending"
                if isinstance(v, str) and key.column.type == "number":  # a bound: sort by its number
                    try:
                        return float(v.lstrip("<>= "))
                    except ValueError:
                        return None
                return v

            present = [o for o in items if value(o) is not None]
            missing = [o for o in items if value(o) is None]
            items = sorted(present, key=value, reverse=key.descending) + missing
        return items[:self.top] if self.top is not None else items


@dataclass
class ScreenResult:
    """What `screen` kept, in order: each symbol's outcome (`outcomes[i].summary`, and its full
    evaluation when traces were rendered), the columns chosen, and what was left out and why."""

    outcomes: list[Outcome]
    screen: Screen
    left_out: int = 0  # evaluated, and left out by `where`
    failures: list[Failure] = field(default_factory=list)  # symbols whose evaluation failed
    skipped: list[Problem] = field(default_factory=list)  # problems of stock files left out when loading
    evaluated: int = 0  # evaluated and kept (in `outcomes`, or given to `emit`)

    @property
    def columns(self) -> list[Column]:
        return self.screen.columns

    def rows(self) -> list[dict[str, Any]]:
        """One dict per symbol, keyed by column header (floats to 6 decimals): what `--format json` prints,
        and what `pandas.DataFrame(result.rows())` takes."""
        from .output.screen import screen_records

        return screen_records(self.outcomes, self.columns)


def screen(ws: Workspace, symbols: Sequence[str] | None = None, *, where: str | None = None,
           columns: str | Sequence[str] | None = DEFAULT_COLUMNS, sort: str = "rating,score", top: int | None = None,
           as_of: dt.date | None = None, traces: bool = False, jobs: int = 1, executor: str | ExecutorSpec = "local",
           progress: Callable[[int, int], None] | None = None, record: bool = False, spill: Path | None = None,
           indent: int | None = None, emit: Callable[[Outcome], None] | None = None,
           recorded: Callable[[Outcome], None] | None = None) -> ScreenResult:
    """Evaluate `symbols` (None: every symbol with facts), keep those `where` holds for, sort, keep `top`.

    The arguments are those of `verdict evaluate --all`: `where` a rule expression over facts and outcome
    names (`'rating == "Buy" and stock.pe_ttm < 50'`), `columns` names or a comma-separated string
    (None: no columns, only the outcomes), `sort` like `--sort`. `traces`: render each kept symbol's full
    evaluation too (what JSON output shows; several times the cost of the evaluation). `record`: keep
    each kept symbol's trace, what the audit log stores (`audit.record`; cheap beside rendering).
    `jobs` > 1 evaluates in forked worker processes (0: one per core), `executor` on a Dask or Ray cluster.

    For screens too large to hold: `spill`, a folder where the workers write the rendered JSON (each
    outcome reads its own back when asked), `indent` it indented so; `emit` is given each outcome as
    it completes, in no order and without `top`, instead of keeping them in the result. `recorded`,
    with `record`: given each kept outcome with its trace, as soon as it has one (as it arrives, or
    once a --top screen's few are evaluated again): what a caller appends to the audit log
    (`audit.Batch.add_outcome`), prepared while the rest are still being evaluated.
    """
    from .batch import evaluate_many
    from .executors import ExecutorSpec

    if emit is not None and top is not None:
        raise ValueError("screen(): `top` keeps the first of an order, and `emit` has none")
    chosen = columns if columns is None or isinstance(columns, str) else ",".join(columns)
    spec = Screen.build(ws.facts.catalog, book_signals(ws.book), where=where, columns=chosen, sort=sort, top=top)
    run_on = executor if isinstance(executor, ExecutorSpec) else ExecutorSpec.parse(executor)
    # With `top`, the traces of the few symbols kept are rendered afterwards, not those of every symbol.
    done = evaluate_many(ws.rules_dir, ws.facts_dir, symbols, jobs=jobs, as_of=as_of, progress=progress,
                         full=traces and top is None, record=record and top is None, executor=run_on,
                         screen=lambda _: spec, workspace=ws, spill=spill, emit=emit, indent=indent,
                         arrived=recorded if record and top is None else None)
    outcomes = spec.order(done.outcomes, ws.book.policy.scale.names())
    if (traces or record) and top is not None:
        outcomes = with_traces(ws, outcomes, as_of, record=record, indent=indent, fragile_facts=traces)
        if record and recorded is not None:
            for o in outcomes:
                recorded(o)
    return ScreenResult(outcomes, spec, done.filtered, done.failures, done.skipped, done.evaluated)


def with_traces(ws: Any, outcomes: list[Outcome], as_of: dt.date | None, record: bool = True,
                indent: int | None = None, fragile_facts: bool = True) -> list[Outcome]:
    """The outcomes with their traces rendered: the few a --top screen keeps are evaluated again in full
    (the same facts give the same outcome; only the run id is new), instead of rendering every symbol's.
    `record`: keep each run's trace too, as the audit log stores it; `indent`: the JSON indented so;
    `fragile_facts=False`: fragility on the score alone, as a table or CSV screen records it."""
    from .capture import dumps
    from .jsontext import indented
    from .model import Outcome
    from .render import document, render

    out = []
    for o in outcomes:
        run = ws.run(o.summary.symbol, as_of=as_of)
        trace = run.trace(fragile_facts)
        row = {**o.row, "run_id": run.run_id} if "run_id" in o.row else o.row
        rendered = render(trace, ws.rules, ws.compiled)
        text = document(rendered) if indent is None else indented(rendered, indent)
        out.append(Outcome(run.summary(fragile_facts=fragile_facts), text, row=row,
                           trace=dumps(trace) if record else None))
    return out
