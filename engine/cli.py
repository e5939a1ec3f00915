"""The `verdict` command: parse arguments, call the library, render. No logic of its own.

Errors from bad input print as one paragraph per problem (file:line:col, what, how to fix) and
exit with code 2; engine faults with 3; a traceback only with --debug.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperGroup

from .errors import Location, LookupFailure, Problem, VerdictError

# pydantic looks up plugins through every installed distribution's entry points at first use
# (~20 ms of start-up); the command line uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

if TYPE_CHECKING:
    from .pipeline import Workspace

class _Commands(TyperGroup):
    """Bad input (VerdictError) prints one paragraph per problem on stderr and exits with its code, a file the
    system refuses exits 2: the same as the console script and in-process (typer's CliRunner). --debug lets
    the exception through, with its traceback."""

    def invoke(self, ctx: Any) -> Any:  # click's Context, which typer vendors under a private name
        try:
            return super().invoke(ctx)
        except VerdictError as exc:
            if _state["debug"]:
                raise
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:  # a file we were asked to read or write: the system said no
            if _state["debug"]:
                raise
            where = f" '{exc.filename}'" if exc.filename else ""
            sys.stderr.write(f"error: cannot use{where}: {exc.strerror or exc}. Check that the path exists and "
                             "that you may read or write it.\n")
            raise typer.Exit(2) from None


app = typer.Typer(cls=_Commands, add_completion=True, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="verdict: rule-based investment ratings, every one traced to rules and sourced facts.\n\n"
                       "Examples:\n$ verdict evaluate 600111\n$ verdict evaluate 600111 --explain\n"
                       "$ verdict COMMAND --help")
rules_app = typer.Typer(no_args_is_help=True, help="Check and inspect rule packs.\n\n"
                                                   "Examples:\n$ verdict rules check\n$ verdict rules test --coverage")
app.add_typer(rules_app, name="rules")
audit_app = typer.Typer(no_args_is_help=True, help="The audit log: list, show, replay, report, diff, verify, "
                                                   "checkpoint, export.\n\n"
                                                   "Examples:\n$ verdict audit list --symbol 600111\n"
                                                   "$ verdict audit verify")
app.add_typer(audit_app, name="audit")
from .cli_data import data_app  # noqa: E402  (commands of their own module: verdict data ...)

app.add_typer(data_app, name="data")

_state = {"debug": False}


class Format(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    csv = "csv"
    markdown = "markdown"


RulesOpt = Annotated[Path, typer.Option("--rules", help="Directory of YAML rule packs and policy.yaml.")]
FactsOpt = Annotated[Path, typer.Option("--facts", help="Directory of fact files (catalog, sources, stocks, sectors).")]
AuditOpt = Annotated[Path | None, typer.Option("--audit-db", help="Audit log (default: $VERDICT_AUDIT_DB, else "
                                                                  "~/.local/share/verdict/audit.sqlite3).")]


def _complete_symbol(ctx: typer.Context, incomplete: str) -> list[str]:
    """Shell completion of a symbol: the codes of the stock files in --facts (no file is parsed)."""
    folder = Path(ctx.params.get("facts") or "facts") / "stocks"
    codes = sorted(p.stem for p in folder.glob("*.yaml")) if folder.is_dir() else []
    return [c for c in codes if c.startswith(incomplete)]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        typer.echo(f"verdict {__version__}")  # the engine version every evaluation and audit record carries
        raise typer.Exit()


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
          version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                                help="Print the engine version (the one audit records carry) and "
                                                     "exit.")] = False) -> None:
    _state["debug"] = debug


@app.command()
def evaluate(
    symbols: Annotated[list[str] | None, typer.Argument(help="600111, 600111.SH or a name; several for a batch.",
                                                        autocompletion=_complete_symbol)
                       ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Evaluate every symbol with facts.")] = False,
    universe: Annotated[Path | None, typer.Option("--universe", help="A file of symbols, one per line.")] = None,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    explain: Annotated[bool, typer.Option("--explain", help="Print the derivation tree.")] = False,
    depth: Annotated[int | None, typer.Option("--depth", min=0, help="With --explain: open at most this many levels "
                                              "of signal-emitting rules below each rule (default: all).")] = None,
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not append to the audit log.")] = False,
    audit_db: AuditOpt = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD): only facts "
                                                             "and prices dated on or before it are used.")] = None,
    where: Annotated[str | None, typer.Option("--where", help="Keep the symbols this holds for: a rule expression "
                                              "over facts (stock.pe_ttm < 50) and rating, score, target, upside, "
                                              "... (rating == \"Buy\").")] = None,
    columns: Annotated[str | None, typer.Option("--columns", help="Columns of a screen, comma-separated: rating, "
                                                "score, target, upside, warning, ..., any fact (pe_ttm or "
                                                "stock.pe_ttm), signal.NAME.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="Order of a batch: any column, COLUMN:asc or :desc, several "
                                      "comma-separated (default: rating best first, then score); none: JSON written "
                                      "as each symbol completes.")] = "rating,score",
    top: Annotated[int | None, typer.Option("--top", min=1, help="Keep the first N after sorting.")] = None,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Processes for a batch (0: one per core).", min=0)] = 0,
    executor: Annotated[str, typer.Option("--executor", help="Where a batch runs: local (default), dask, ray, "
                                                             "or dask:ADDRESS / ray:ADDRESS to join a cluster.")
                        ] = "local",
) -> None:
    """Evaluate a stock, several, a --universe file or --all; print rating, target, entries, warnings.

    A batch is a screen: --where keeps the symbols an expression holds for, --columns chooses what each row
    shows, --sort and --top order and cut it. Every evaluation shown is appended to the audit log unless
    --no-record is given. In a batch a symbol whose facts are bad is reported and skipped; the exit code is
    1 if any was.

    Examples:
    $ verdict evaluate 600111
    $ verdict evaluate 600111 --explain --depth 1
    $ verdict evaluate 600111 --as-of 2026-01-13 --format json
    $ verdict evaluate --all --where 'rating == "Buy" and stock.pe_ttm < 50' --columns pe_ttm,upside --sort upside
    """
    names = list(symbols or [])
    sources = sum([bool(names), all_, universe is not None])
    if sources != 1:
        raise LookupFailure([Problem(Location(), "usage", "give SYMBOL(s), --universe FILE or --all (one of them).",
                                     "Example: verdict evaluate 600111, or verdict evaluate --all.")])
    day = _date_option("--as-of", as_of)
    screening = where is not None or columns is not None or top is not None
    if len(names) == 1 and not all_ and universe is None and not screening:
        from .capture import dumps
        from .model import Outcome, Summary
        from .render import document, model
        from .render import render as render_trace

        ws = _open(rules, facts)
        run = ws.run(names[0], as_of=day)
        trace = run.trace()
        rendered = render_trace(trace, ws.rules, ws.compiled)
        ev = model(rendered)
        outcome = Outcome(Summary.of(ev), document(rendered), ev, trace=dumps(trace))
        if not no_record:
            _record(ws, [outcome], audit_db)
        from .output.evaluation import evaluation_output

        typer.echo(evaluation_output(outcome, format, explain=explain, depth=depth, width=_width()), nl=False)
        _note_left_out(ws)
        return
    if universe is not None:
        names = _universe_symbols(universe)
    _screen(rules, facts, None if all_ else names, jobs=jobs, day=day, format=format, explain=explain,
            depth=depth, no_record=no_record, audit_db=audit_db, where=where, columns=columns, sort=sort, top=top,
            executor=executor)


def _width() -> int:
    return shutil.get_terminal_size().columns if sys.stdout.isatty() else 160  # piped: long lines fold at 160


def _screen(rules: Path, facts: Path, names: list[str] | None, *, jobs: int, day: dt.date | None, format: Format,
            explain: bool, depth: int | None, no_record: bool, audit_db: Path | None, where: str | None,
            columns: str | None, sort: str, top: int | None, executor: str) -> None:
    """A batch: evaluate in worker processes, keep what --where holds for, sort, cut, record, print.

    Full evaluations (JSON and JSON lines without --columns) are rendered by the workers and written
    to spill files; the parent keeps one summary per symbol and writes the documents one at a time:
    as each symbol completes with --sort none, else once the summaries are sorted, reading each
    document back as it is written. A recorded screen records each run's trace (the audit log
    renders it when read), not its rendering."""
    import tempfile

    from .audit import batch as audit_batch
    from .output.screen import DocumentWriter, screen_output
    from .screening import DEFAULT_COLUMNS, screen

    if columns is None and format in (Format.table, Format.markdown):
        columns = ",".join(DEFAULT_COLUMNS)  # a screen's table: one row per symbol
    rows_only = columns is not None
    unsorted = sort.strip().lower() == "none"
    if unsorted and top is not None:
        raise LookupFailure([Problem(Location("--sort"), "usage", "--top keeps the first N of an order, and "
                                     "--sort none has none (symbols are written as they complete).",
                                     "Give --sort a column (e.g. --sort upside --top 20), or leave out --top.")])
    documents = (explain and format not in (Format.json, Format.jsonl, Format.csv)) or (
        format in (Format.json, Format.jsonl) and not rows_only)
    ws = _open(rules, facts)
    # With --top the traces of the few symbols kept are rendered (and recorded) afterwards, not every symbol's.
    spill = Path(tempfile.mkdtemp(prefix="verdict-screen-")) if documents and top is None else None
    kwargs: dict[str, Any] = {"where": where, "columns": columns, "sort": "symbol" if unsorted else sort,
                              "top": top, "as_of": day, "traces": documents, "record": not no_record, "jobs": jobs,
                              "executor": executor, "spill": spill, "indent": 2 if format is Format.json else None}
    writer = DocumentWriter(format, sys.stdout) if documents and format in (Format.json, Format.jsonl) else None
    if writer is not None and unsorted:
        kwargs["emit"] = writer.add  # no order to wait for: each is written as it completes
    # Recorded: each record is prepared as its evaluation arrives, and all are appended at the end.
    log = None if no_record else _audit_log(audit_db)
    records = None if log is None else audit_batch(ws, log, keep=False)
    if records is not None:
        kwargs["recorded"] = records.add_outcome
    try:
        if format is Format.table and sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import Progress

            with Progress(transient=True, console=Console(stderr=True)) as bar:
                task = bar.add_task("evaluating", total=None)
                r = screen(ws, names, progress=lambda done, total: bar.update(task, completed=done, total=total),
                           **kwargs)
        else:
            r = screen(ws, names, **kwargs)
        if writer is not None:
            for o in r.outcomes:
                writer.add(o)
            writer.close()
        else:
            typer.echo(screen_output(r.outcomes, r.screen, format, explain=explain, depth=depth, left_out=r.left_out,
                                     width=_width()), nl=False)
        if records is not None:
            records.commit()
    finally:
        if log is not None:
            log.close()
        if spill is not None:
            import shutil as sh

            sh.rmtree(spill, ignore_errors=True)
    for p in r.skipped:
        sys.stderr.write(f"skipped: {p.render()}\n")
    shown = r.failures if len(r.failures) <= 20 else r.failures[:10]  # a universe reports, it does not flood
    for f in shown:
        sys.stderr.write(f"failed: {f.symbol}: {f.message}\n")
    if len(shown) < len(r.failures):
        fresh = sum("is fresh on" in f.message for f in r.failures)
        sys.stderr.write(f"... and {len(r.failures) - len(shown):,} more failed"
                         + (f" ({fresh:,} of all {len(r.failures):,} have no fresh data on the date)" if fresh else "")
                         + ": verdict evaluate SYMBOL shows why for any one.\n")
    if r.skipped or r.failures:
        sys.stderr.write(f"{r.evaluated + r.left_out} evaluated, {len(r.failures)} failed, {len(r.skipped)} "
                         "problem(s) in skipped fact files.\n")
        raise typer.Exit(1)


def _open(rules: Path, facts: Path) -> Workspace:
    """The workspace of a command about named symbols: a stock file with problems leaves out only its own
    symbol (naming it gives its problems, exit 2), so one bad file does not stop work on the others."""
    from .pipeline import Workspace

    return Workspace.open(rules, facts, partial=True)


def _output_file(option: str, path: Path) -> Path:
    """A file a command will write: its folder must exist (nothing is created behind the user's back)."""
    folder = path.parent
    if path.is_dir():
        raise LookupFailure([Problem(Location(str(path)), "bad-output", f"{option} '{path}' is a folder, not a file.",
                                     "Give a file name inside it.")])
    if not folder.is_dir():
        raise LookupFailure([Problem(Location(str(path)), "bad-output",
                                     f"the folder of {option} '{path}' does not exist.",
                                     f"Create it first (mkdir -p {folder}) or choose another path.")])
    return path


def _output_dir(option: str, path: Path) -> Path:
    """A folder a command will write into: it may be created, but only inside an existing one."""
    if path.exists() and not path.is_dir():
        raise LookupFailure([Problem(Location(str(path)), "bad-output", f"{option} '{path}' is a file, not a folder.",
                                     "Give a folder for the outputs.")])
    if not path.exists() and not path.parent.is_dir():
        raise LookupFailure([Problem(Location(str(path)), "bad-output",
                                     f"{option} '{path}': its parent folder '{path.parent}' does not exist.",
                                     f"Create it first (mkdir -p {path}) or choose another folder.")])
    return path


def _note_left_out(ws: Workspace) -> None:
    files = ws.facts.skipped_files
    if files:
        sys.stderr.write(f"note: {len(files)} stock file(s) with problems were left out: {', '.join(files)} "
                         "(`verdict rules check` lists the problems).\n")


@rules_app.command("check")
def rules_check(
    directory: Annotated[Path, typer.Argument(help="Rules directory.")] = Path("rules"),
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f", help="table (file:line:col) or json.")] = Format.table,
    strict: Annotated[bool, typer.Option("--strict", help="Fail on warnings too.")] = False,
) -> None:
    """Validate and lint every pack: file:line:col: severity: message [rule-id]; exit 1 on errors.

    Examples:
    $ verdict rules check
    $ verdict rules check --strict --format json
    """
    from .lint import check
    from .output.rules import check_json, check_lines, check_summary

    report = check(directory, facts)
    if format is Format.json:
        typer.echo(check_json(report), nl=False)
    else:
        typer.echo(check_lines(report), nl=False)
        typer.echo(check_summary(report), nl=False, err=True)
    if report.errors or (strict and report.warnings):
        raise typer.Exit(1)


@rules_app.command("test")
def rules_test(
    directory: Annotated[Path, typer.Argument(help="Rules directory (cases are read from DIR/tests).")] = Path("rules"),
    facts: FactsOpt = Path("facts"),
    coverage: Annotated[bool, typer.Option("--coverage", help="Report rules no case fired, per pack.")] = False,
    min_coverage: Annotated[float, typer.Option("--min-coverage", help="Fail below this percentage.")] = 0.0,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Run the rule test cases beside the packs; exit 1 on any failure.

    Examples:
    $ verdict rules test --coverage
    $ verdict rules test --min-coverage 90
    """
    from .casetest import coverage as measure
    from .casetest import run_cases
    from .output.rules import cases_json, cases_text

    ws = _open(directory, facts)
    results = run_cases(ws)
    cov = measure(ws, results)
    typer.echo(cases_json(results, cov) if format is Format.json else cases_text(results, cov, coverage), nl=False)
    if any(not r.passed for r in results) or (cov.percent < min_coverage):
        if cov.percent < min_coverage:
            typer.echo(f"coverage {cov.percent:.1f}% is below --min-coverage {min_coverage:g}%", err=True)
        raise typer.Exit(1)


@rules_app.command("schema")
def rules_schema(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the *.schema.json files to.")] = Path("schema"),
) -> None:
    """Write JSON Schemas of rule, policy, test and fact files (for editors' YAML language servers).

    Examples:
    $ verdict rules schema --out schema
    """
    from .schema import write_schemas

    for path in write_schemas(out):
        typer.echo(str(path))


@rules_app.command("diff")
def rules_diff(
    old: Annotated[Path, typer.Argument(help="Rules directory before the edit.")],
    new: Annotated[Path, typer.Argument(help="Rules directory after the edit.")],
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    fail_on_change: Annotated[bool, typer.Option("--fail-on-change", help="Exit 1 if any symbol's outcome, or the "
                                                 "rules it fires, changes (to gate CI on it).")] = False,
) -> None:
    """Which symbols' ratings, targets, entries and warnings an edit changes, and which rules cause it.

    Examples:
    $ verdict rules diff old-rules rules --fail-on-change
    """
    from .output.rules import rulediff_text
    from .pipeline import Workspace
    from .rulediff import diff_rulebooks

    d = diff_rulebooks(Workspace.open(old, facts), Workspace.open(new, facts))
    typer.echo(json.dumps(d.as_dict(), indent=2, ensure_ascii=False) + "\n" if format is Format.json else
               rulediff_text(d), nl=False)
    if fail_on_change and d.changed:
        typer.echo(f"{len(d.symbols)} symbol(s) change (--fail-on-change).", err=True)
        raise typer.Exit(1)


@app.command("backtest")
def backtest_cmd(
    symbols: Annotated[list[str] | None, typer.Argument(help="600111, 600111.SH or a name; several for a universe.",
                                                        autocompletion=_complete_symbol)
                       ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every symbol with a price history.")] = False,
    universe: Annotated[Path | None, typer.Option("--universe", help="A file of symbols, one per line.")] = None,
    start: Annotated[str | None, typer.Option("--from", help="First date (YYYY-MM-DD; default: first price).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last date (YYYY-MM-DD; default: last price).")] = None,
    every: Annotated[int, typer.Option("--every", help="Rate every N trading days.", min=1)] = 5,
    horizons: Annotated[str, typer.Option("--horizons", help="Forward horizons in trading days, e.g. 20,60,120.")
                        ] = "20,60,120",
    out: Annotated[Path, typer.Option("--out", help="Directory for the JSON, CSV and PNG outputs.")] = Path("."),
    executor: Annotated[str, typer.Option("--executor", help="local (default), dask, ray, or dask:ADDRESS / "
                                                             "ray:ADDRESS to join a running cluster.")] = "local",
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Local processes (0: one per core).", min=0)] = 0,
    benchmark: Annotated[str | None, typer.Option("--benchmark", help="A CSV of index levels (date, open, close), a "
                                                  "benchmarks/*.yaml, or equal-weight (default: the policy's "
                                                  "benchmark from FACTS/benchmarks, else equal-weight).")] = None,
    quantiles: Annotated[int, typer.Option("--quantiles", help="Score quantiles per date.", min=2)] = 5,
    charts: Annotated[bool, typer.Option("--charts/--no-charts", help="Write PNG charts (needs verdict[charts]).")
                      ] = True,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f", help="table (a summary) or json (backtest.json)")
                      ] = Format.table,
) -> None:
    """Rate symbols as of every N-th trading day with only what was known then; measure forward excess
    returns against a benchmark by rating and score; write JSON, CSV and charts to --out.

    Examples:
    $ verdict backtest 600111 --from 2025-06-02 --to 2026-03-31 --every 10 --out out/
    $ verdict backtest --all --every 5 --horizons 20,60,120 --out out/ --executor dask
    """
    from .backtesting import DEFAULT_RETURN_DAYS, backtest
    from .executors import ExecutorSpec
    from .output.backtest import summary_text, write, write_symbol
    from .pipeline import Workspace

    names = list(symbols or [])
    if sum([bool(names), all_, universe is not None]) != 1:
        raise LookupFailure([Problem(Location(), "usage", "give SYMBOL(s), --universe FILE or --all (one of them).",
                                     "Example: verdict backtest --all --from 2022-07-01 --to 2025-06-30 --every 5")])
    _output_dir("--out", out)
    spec = ExecutorSpec.parse(executor)
    try:
        hs = sorted({int(x) for x in horizons.split(",") if x.strip()}) or list(DEFAULT_RETURN_DAYS)
    except ValueError:
        raise LookupFailure([Problem(Location(), "usage", f"--horizons '{horizons}' is not a list of day counts.",
                                     "Write it as 20,60,120.")]) from None
    if any(h < 1 for h in hs):
        raise LookupFailure([Problem(Location(), "usage", "--horizons must be positive day counts.", "")])
    d1, d2 = _date_option("--from", start), _date_option("--to", end)
    if universe is not None:
        names = _universe_symbols(universe)
    import time

    t_load = time.perf_counter()
    ws = Workspace.open(rules, facts, partial=not names or len(names) > 1)
    load_s = time.perf_counter() - t_load
    if charts:
        from .btcharts import available

        if not available():
            sys.stderr.write("charts skipped: matplotlib is not installed (pip install 'verdict[charts]').\n")
            charts = False
    result = _run_backtest(lambda progress, started: backtest(
        ws, None if all_ else names, start=d1, end=d2, every=every, horizons=hs, benchmark=benchmark, executor=spec,
        jobs=jobs, quantiles=quantiles, progress=progress, started=started))
    result.phases = {"load": load_s, **result.phases}
    files = write(result, out, charts)
    if len(result.symbols) == 1:
        files += write_symbol(result, 0, out, charts)
    if format is Format.json:
        typer.echo((out / "backtest.json").read_text(encoding="utf-8").rstrip())
    else:
        typer.echo(summary_text(result))
        typer.echo("written: " + ", ".join(str(p) for p in files))
    for p in ws.facts.skipped:
        sys.stderr.write(f"skipped: {p.render()}\n")
    failures = [r for r in result.ratings if r.error]
    for r in failures[:20]:
        sys.stderr.write(f"failed: {r.symbol}: {r.error}\n")
    if failures or ws.facts.skipped:
        sys.stderr.write(f"{len(failures)} symbol(s) with failed evaluations, {len(ws.facts.skipped)} problem(s) in "
                         "skipped fact files.\n")
        raise typer.Exit(1)


def _run_backtest(go: Any) -> Any:
    """Run with a progress bar on a terminal (symbols done, evaluations, rate); silent when piped."""
    if not sys.stderr.isatty():
        return go(None, None)
    import time

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    t0 = time.perf_counter()
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  TextColumn("{task.fields[rate]}"), transient=True, console=Console(stderr=True)) as bar:
        task = bar.add_task("starting workers", total=None, rate="")

        def progress(done: int, total: int, evaluations: int) -> None:
            rate = evaluations / max(1e-9, time.perf_counter() - t0)
            bar.update(task, completed=done, total=total, rate=f"{evaluations} evaluations, {rate:,.0f}/s")

        def started(what: str) -> None:
            bar.update(task, description=f"rating ({what})")

        return go(progress, started)


@app.command("what-if")
def what_if_cmd(
    symbol: Annotated[str, typer.Argument(help="600111, 600111.SH or the name.", autocompletion=_complete_symbol)],
    set_: Annotated[list[str] | None, typer.Option("--set", help="PATH=VALUE, repeatable (e.g. stock.pe_ttm=40; "
                                                                  "a bound, quoted: 'stock.kdj_j=>80'); with "
                                                                  "--scenarios or --grid: set in each.")] = None,
    scenarios: Annotated[Path | None, typer.Option("--scenarios", help="A YAML file of named scenarios, shown side "
                                                   "by side (see README).")] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="PATH=FROM:TO:STEP, once or twice: the rating and "
                                                   "score at every value (two: a two-way table).")] = None,
    chart: Annotated[Path | None, typer.Option("--chart", help="With --grid: write a heat map (PNG) here.")] = None,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD).")] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Re-evaluate with facts replaced (--set, named --scenarios or a --grid); side by side with the baseline.

    Examples:
    $ verdict what-if 600111 --set stock.pe_ttm=40 --set 'stock.kdj_j=>90'
    $ verdict what-if 600111 --scenarios scenarios/600111-bear-base-bull.yaml
    $ verdict what-if 600111 --grid stock.pe_ttm=30:90:10 --grid stock.earnings_growth_low_pct=60:140:20
    """
    from .output.scenarios import comparison_output, grid_output
    from .scenarios import Scenario, compare_scenarios, heat_map, load_scenarios, parse_axis
    from .scenarios import grid as grid_of
    from .whatif import parse_assignments

    values = parse_assignments(set_ or [])
    if grid and scenarios is not None:
        raise LookupFailure([Problem(Location(), "usage", "give --scenarios or --grid, not both.",
                                     "A grid varies one or two facts; scenarios set several at once.")])
    if chart is not None and not grid:
        raise LookupFailure([Problem(Location(), "usage", "--chart draws a --grid's heat map; give --grid too.",
                                     "Example: --grid stock.pe_ttm=30:90:10 --grid stock.price=40:60:5 --chart g.png")])
    ws = _open(rules, facts)
    day = _date_option("--as-of", as_of)
    if grid:
        g = grid_of(ws, symbol, [parse_axis(t, ws) for t in grid], values, day)
        if chart is not None:
            heat_map(g, chart)
        typer.echo(grid_output(g, format), nl=False)
        if chart is not None:
            typer.echo(f"chart: {chart}", err=True)
        return
    if scenarios is not None:
        named = load_scenarios(scenarios, ws)
        comparison = compare_scenarios(ws, symbol, named, values, day)
    else:
        named = [Scenario(", ".join(f"{p}={t.partition('=')[2].strip()}" for p, t in zip(values, set_ or [],
                                                                                           strict=True)), values)
                 ] if values else []
        comparison = compare_scenarios(ws, symbol, named, None, day, from_set=True)
    typer.echo(comparison_output(comparison, format, overrides=values if scenarios is None else None,
                                 width=_width()), nl=False)


@app.command("sensitivity")
def sensitivity_cmd(
    symbol: Annotated[str, typer.Argument(help="600111, 600111.SH or the name.", autocompletion=_complete_symbol)],
    fact: Annotated[list[str] | None, typer.Option("--fact", help="Only these fact paths (repeatable).")] = None,
    price: Annotated[bool, typer.Option("--price", help="Only the share price: at what price does the rating "
                                                        "change?")] = False,
    chart: Annotated[Path | None, typer.Option("--chart", help="Write a tornado chart (PNG) here.")] = None,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluation date (YYYY-MM-DD).")] = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """For every numeric fact a rule reads: the nearest values below and above at which the rating changes.

    Examples:
    $ verdict sensitivity 600111 --chart tornado.png
    $ verdict sensitivity 600111 --price
    """
    from .output.sensitivity import sensitivity_output
    from .whatif import price_sensitivity, sensitivity, tornado

    if chart is not None:
        _output_file("--chart", chart)
    ws = _open(rules, facts)
    day = _date_option("--as-of", as_of)
    result = price_sensitivity(ws, symbol, day) if price else sensitivity(ws, symbol, day, fact)
    if chart is not None:
        tornado(result, chart)
    typer.echo(sensitivity_output(result, format, price=price, chart=chart), nl=False)


@app.command("report")
def report_cmd(
    symbol: Annotated[str | None, typer.Argument(help="600111, 600111.SH or the name.",
                                                 autocompletion=_complete_symbol)] = None,
    out: Annotated[Path, typer.Option("--out", help="The HTML file (one symbol), or a directory (--all, "
                                                    "--universe): index.html and one page a symbol.")] = Path("report"),
    all_: Annotated[bool, typer.Option("--all", help="Every symbol with facts: an index page and one page each.")
                    ] = False,
    universe: Annotated[Path | None, typer.Option("--universe", help="A file of symbols, one per line.")] = None,
    as_of: Annotated[str | None, typer.Option("--as-of", help="Evaluate as of this date (YYYY-MM-DD).")] = None,
    window: Annotated[int, typer.Option("--window", help="Trading days on the chart.", min=5, max=5000)] = 120,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    no_record: Annotated[bool, typer.Option("--no-record", help="Do not append to the audit log.")] = False,
    audit_db: AuditOpt = None,
) -> None:
    """A self-contained HTML page of a rating: chart, bands, warnings, derivation, facts, sensitivity.

    The evaluation is recorded in the audit log (unless --no-record), so `verdict audit report RUN_ID`
    writes the same page again, byte for byte, from the stored rules and facts.

    Examples:
    $ verdict report 600111 --out 600111.html
    $ verdict report --all --out report/
    """
    from .model import Evaluation, Outcome
    from .report import stock_page, write_reports, write_text

    if sum([symbol is not None, all_, universe is not None]) != 1:
        raise LookupFailure([Problem(Location(), "usage", "give a SYMBOL, --universe FILE or --all (one of them).",
                                     "Example: verdict report 600111 --out 600111.html")])
    if symbol is not None:
        _output_file("--out", out)
    else:
        _output_dir("--out", out)
    day = _date_option("--as-of", as_of)
    ws = _open(rules, facts)
    if all_:
        _note_left_out(ws)
    names = _universe_symbols(universe) if universe is not None else ws.symbols() if all_ else [symbol or ""]
    stocks = [ws.facts.find(n).file.symbol for n in names]  # every unknown symbol fails before anything is written
    evs = [ws.evaluate(s, as_of=day) for s in stocks]
    if not no_record:
        _record(ws, [Outcome.of(ev) for ev in evs], audit_db)
    # the page is made from the evaluation as recorded (its JSON), as `audit report` makes it later
    evs = [Evaluation.model_validate_json(ev.model_dump_json()) for ev in evs]
    if symbol is not None:
        path = write_text(out, stock_page(ws, evs[0], window))
        typer.echo(f"{path}  ({evs[0].symbol} {evs[0].rating}, run {evs[0].run_id})")
        return
    paths = write_reports(ws, evs, out, window)
    typer.echo(f"{paths[-1]}  ({len(evs)} symbol(s); pages in {out})")


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.2f}"


def _record(ws: Workspace, outcomes: list[Any], audit_db: Path | None) -> None:
    from .audit import record

    log = _audit_log(audit_db)
    try:
        record(ws, outcomes, log, keep=False)
    finally:
        log.close()


def _audit_log(audit_db: Path | None) -> Any:
    """The audit log opened for writing; a writer kept waiting by another process's lock says so."""
    from .audit import WAIT_ENV_VAR, AuditLog

    def waiting(seconds: float) -> None:
        sys.stderr.write(f"waiting for the audit log {log.path}: another process holds its write lock (giving up "
                         f"after {log.wait:g} s; ${WAIT_ENV_VAR} sets it)...\n")

    log = AuditLog(audit_db, on_wait=waiting)
    return log


def _reader(audit_db: Path | None) -> Any:
    """The audit log opened read-only: readers never take, or wait for, the write lock."""
    from .audit import AuditLog

    return AuditLog(audit_db, readonly=True)


@audit_app.command("list")
def audit_list(
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol (e.g. 600111.SH).")] = None,
    since: Annotated[str | None, typer.Option("--since", help="Only runs on or after this date (YYYY-MM-DD, UTC).")
                     ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Only runs on or before this date (YYYY-MM-DD, UTC).")
                     ] = None,
    audit_db: AuditOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """List recorded evaluations, oldest first: seq, run id, time, user, symbol, rating, score, as-of, engine.

    Examples:
    $ verdict audit list --symbol 600111 --since 2026-01-20
    $ verdict audit list --format csv
    """
    from .output.audit import records_output

    first, last = _date_option("--since", since), _date_option("--until", until)
    log = _reader(audit_db)
    rows = [r.as_dict() for r in log.infos(_canonical_symbol(symbol), first, last)]
    typer.echo(records_output(rows, format), nl=False)
    typer.echo(f"{len(rows)} record(s) in {log.path}", err=True)


def _universe_symbols(universe: Path) -> list[str]:
    """The symbols of a --universe file (one per line), or a clear error when the file is not there."""
    from .batch import universe as read_universe

    if not universe.is_file():
        raise LookupFailure([Problem(Location(str(universe)), "no-universe",
                                     f"the universe file '{universe}' does not exist.",
                                     "Give a text file with one symbol per line.")])
    return read_universe(universe)


def _date_option(name: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise LookupFailure([Problem(Location(), "bad-date", f"{name} '{value}' is not a date.",
                                     f"Write it as YYYY-MM-DD, e.g. {name} 2026-01-19.", input=value)]) from None


def _canonical_symbol(symbol: str | None) -> str | None:
    """--symbol as the audit log stores it (600111 -> 600111.SH); the facts' own rule, not a second one."""
    from .barformats import canonical_symbol

    return canonical_symbol(symbol) if symbol else None


RunArg = Annotated[str, typer.Argument(help="Run id (or a unique prefix of 6+ characters).")]


@audit_app.command("show")
def audit_show(
    run_id: RunArg,
    audit_db: AuditOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """The derivation tree of a recorded run, exactly as it was (--format json: the recorded output).

    Examples:
    $ verdict audit show 3f9a2c
    $ verdict audit show 3f9a2c --format json
    """
    from .audit import record_document, recorded_evaluation
    from .output.audit import run_heading
    from .output.evaluation import render_markdown, render_tree

    rec = _reader(audit_db).get(run_id)
    if format in (Format.json, Format.jsonl):  # the recorded JSON itself, not re-read through today's model
        typer.echo(json.dumps(record_document(rec)["output"], indent=2 if format is Format.json else None,
                              ensure_ascii=False))
        return
    ev = recorded_evaluation(rec)
    typer.echo(run_heading(rec))
    typer.echo(render_markdown(ev) if format is Format.markdown else render_tree(ev))


@app.command("why")
def why(
    target: Annotated[str, typer.Argument(help="A symbol (its latest recorded run) or a run id.")],
    audit_db: AuditOpt = None,
    depth: Annotated[int | None, typer.Option("--depth", min=0, help="Open at most this many levels of "
                                              "signal-emitting rules in the tree (default: all).")] = None,
) -> None:
    """Why a recorded rating was given, and why not the rating one band up or down (that first, the tree after).

    Examples:
    $ verdict why 600111
    $ verdict why 3f9a2c --depth 1
    """
    from .audit import recorded_evaluation
    from .output.evaluation import render_tree
    from .whynot import why_not

    log = _reader(audit_db)
    try:
        rec = log.latest(_canonical_symbol(target) or target)
    except LookupFailure:
        rec = log.get(target)
    ev = recorded_evaluation(rec)
    typer.echo(f"run {rec.run_id}  recorded {rec.created_utc}  by {rec.os_user}  engine {rec.engine_version}")
    typer.echo(f"{ev.symbol} {ev.name}: {ev.rating} (score {ev.score:g})")
    typer.echo(why_not(ev))
    typer.echo(render_tree(ev, depth))


@audit_app.command("replay")
def audit_replay(
    run_id: RunArg,
    rules: Annotated[Path | None, typer.Option("--rules", help="Evaluate the run's recorded facts with the rule "
                                               "packs and policy in this directory instead of the recorded ones.")
                     ] = None,
    current_rules: Annotated[bool, typer.Option("--current-rules", help="Same as --rules rules: today's rules.")
                             ] = False,
    fail_on_change: Annotated[bool, typer.Option("--fail-on-change", help="With --rules: exit 1 if anything "
                                                 "changed.")] = False,
    audit_db: AuditOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json (with --rules).")] = Format.table,
) -> None:
    """Re-run a recorded evaluation from its stored rules and facts, as of its recorded date; exit 1
    with a diff if the output is not byte-identical.

    With --rules DIR (or --current-rules): the run's recorded facts, as of its recorded date, under the
    rules in DIR; prints what changes against the recorded outcome (rating, score, target, entries,
    warnings, rules that newly fire or stop). Nothing is recorded.

    Examples:
    $ verdict audit replay 3f9a2c
    $ verdict audit replay 3f9a2c --current-rules --fail-on-change
    """
    from .audit import replay, replay_with_rules
    from .output.audit import diff_text, replay_text

    if current_rules:
        if rules is not None:
            raise LookupFailure([Problem(Location(), "usage", "give --rules DIR or --current-rules, not both.",
                                         "--current-rules is --rules rules (the rules of the current directory).")])
        rules = Path("rules")
    log = _reader(audit_db)
    rec = log.get(run_id)
    if rules is None:
        result = replay(log, rec)
        typer.echo(replay_text(result), nl=False)
        if not result.identical:
            raise typer.Exit(1)
        return
    d = replay_with_rules(log, rec, rules)
    if format is Format.json:
        typer.echo(json.dumps({"run_id": rec.run_id, "rules": str(rules), **d.as_dict()}, indent=2,
                              ensure_ascii=False))
    else:
        typer.echo(f"run {rec.run_id} ({rec.symbol}): its recorded facts as of {d.before.as_of} under the rules in "
                   f"{rules}")
        typer.echo(diff_text(d, "recorded", f"rules in {rules}"), nl=False)
    if fail_on_change and d.changed:
        raise typer.Exit(1)


@audit_app.command("diff")
def audit_diff(
    run_a: Annotated[str, typer.Argument(help="The earlier run (id or a unique prefix).")],
    run_b: Annotated[str, typer.Argument(help="The later run (id or a unique prefix).")],
    audit_db: AuditOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="table or json.")] = Format.table,
    fail_on_change: Annotated[bool, typer.Option("--fail-on-change", help="Exit 1 if anything changed.")] = False,
) -> None:
    """Compare two recorded runs: rating, score, target, entries, warnings, rules that newly fire or
    stop, facts that changed (value, source, date), and the rule and fact files that differ.

    Examples:
    $ verdict audit diff 3f9a2c 7b01de --format json
    """
    from .audit import diff_runs
    from .output.audit import diff_text

    log = _reader(audit_db)
    a, b = log.get(run_a), log.get(run_b)
    d = diff_runs(log, a, b)
    if format is Format.json:
        typer.echo(json.dumps(d.as_dict(), indent=2, ensure_ascii=False))
    else:
        typer.echo(diff_text(d, f"run {a.run_id} (seq {a.seq}, {a.created_utc[:19]}Z)",
                             f"run {b.run_id} (seq {b.seq}, {b.created_utc[:19]}Z)"), nl=False)
    if fail_on_change and d.changed:
        raise typer.Exit(1)


@audit_app.command("report")
def audit_report(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix of 6+ characters).")],
    out: Annotated[Path, typer.Option("--out", help="The HTML file to write.")],
    window: Annotated[int, typer.Option("--window", help="Trading days on the chart (as given when it was made).",
                                        min=5, max=5000)] = 120,
    audit_db: AuditOpt = None,
) -> None:
    """The HTML page of a recorded run, from its stored evaluation, rules and facts (byte-identical to the
    page `verdict report` wrote for it with the same --window).

    Examples:
    $ verdict audit report 3f9a2c --out 600111-then.html
    """
    from .report import recorded_page, write_text

    _output_file("--out", out)
    log = _reader(audit_db)
    rec = log.get(run_id)
    path = write_text(out, recorded_page(log, rec, window))
    typer.echo(f"{path}  ({rec.symbol} {rec.rating}, run {rec.run_id}, recorded {rec.created_utc})")


@audit_app.command("verify")
def audit_verify(
    audit_db: AuditOpt = None,
    checkpoint: Annotated[bool, typer.Option("--checkpoint", help="Also check the signed checkpoints stored in "
                                             "the log: every record up to each is unchanged.")] = False,
    checkpoint_file: Annotated[Path | None, typer.Option("--checkpoint-file", help="Check the checkpoint lines in "
                                                         "this file (copies kept outside the log).")] = None,
    public_key: Annotated[Path | None, typer.Option("--public-key", help="The public key checkpoints are checked "
                                                    "with (default: $VERDICT_AUDIT_PUBKEY, else "
                                                    "~/.config/verdict/audit-signing.pub).")] = None,
) -> None:
    """Walk the hash chain; name the first record altered, removed or reordered (exit 1). With
    --checkpoint / --checkpoint-file, also prove every record up to each signed checkpoint unchanged.

    Examples:
    $ verdict audit verify
    $ verdict audit verify --checkpoint --checkpoint-file checkpoints.txt
    """
    from .output.audit import chain_text, checkpoint_text

    log = _reader(audit_db)
    result = log.verify()
    checks = []
    if checkpoint or checkpoint_file is not None:
        from . import checkpoint as cpt

        key = cpt.load_public_key(public_key or cpt.default_public_key_path())
        lines = [(f"{log.path} checkpoint {i}", line) for i, line in enumerate(log.checkpoint_lines(), 1)] \
            if checkpoint else []
        if checkpoint_file is not None:
            if not checkpoint_file.is_file():
                raise LookupFailure([Problem(Location(str(checkpoint_file)), "no-checkpoint-file",
                                             f"no checkpoint file at {checkpoint_file}.",
                                             "Give the file `verdict audit checkpoint --out` appended to.")])
            lines += [(f"{checkpoint_file}:{n}", line) for n, line in
                      enumerate(checkpoint_file.read_text(encoding="utf-8").splitlines(), 1) if line.strip()]
        if not lines:
            where = "the log" if checkpoint_file is None else f"the log or {checkpoint_file}"
            typer.echo(f"chain {'valid' if result.ok else 'BROKEN'}; no checkpoint in {where} to check against: "
                       "if checkpoints were made, they were removed (check the copies kept elsewhere with "
                       "--checkpoint-file).", err=True)
            raise typer.Exit(1)
        checks = [cpt.check(log, result, cpt.Checkpoint.parse(line, where), key, where) for where, line in lines]
    typer.echo(chain_text(result, log.path), nl=False, err=not result.ok)
    for c in checks:
        typer.echo(checkpoint_text(c), nl=False, err=not c.ok)
    if not result.ok or not all(c.ok for c in checks):
        raise typer.Exit(1)


@audit_app.command("keygen")
def audit_keygen(
    key: Annotated[Path | None, typer.Option("--key", help="Where to create the private key (default: "
                                             "$VERDICT_AUDIT_KEY, else ~/.config/verdict/audit-signing.key).")
                   ] = None,
) -> None:
    """Create the Ed25519 key pair that signs checkpoints: the private key (mode 0600) and KEY.pub.

    Examples:
    $ verdict audit keygen
    $ verdict audit keygen --key keys/audit-signing.key
    """
    from . import checkpoint as cpt

    path = key or cpt.default_key_path()
    kid = cpt.generate_key(path)
    typer.echo(f"created {kid}: private key {path} (mode 600; keep it away from the log, ideally with someone "
               f"else), public key {path.with_suffix('.pub')} (share it with whoever verifies).")


@audit_app.command("checkpoint")
def audit_checkpoint(
    audit_db: AuditOpt = None,
    key: Annotated[Path | None, typer.Option("--key", help="The private key (default: $VERDICT_AUDIT_KEY, else "
                                             "~/.config/verdict/audit-signing.key).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also append the checkpoint line to this file (keep "
                                             "it outside the log).")] = None,
) -> None:
    """Sign the log's newest record hash (after verifying the chain up to it); store the checkpoint in the
    log and print it as one line to keep elsewhere. `audit verify --checkpoint` then proves every record
    up to it unchanged, even against a rewrite of the whole file.

    Examples:
    $ verdict audit checkpoint --out checkpoints.txt
    """
    from . import checkpoint as cpt
    from .audit import WAIT_ENV_VAR, AuditLog

    def waiting(seconds: float) -> None:
        sys.stderr.write(f"waiting for the audit log's write lock (another process holds it; ${WAIT_ENV_VAR})...\n")

    private = cpt.load_private_key(key or cpt.default_key_path())
    log = AuditLog(audit_db, on_wait=waiting)
    try:
        cp = cpt.sign(log, private)
    finally:
        log.close()
    if out is not None:
        with out.open("a", encoding="utf-8") as f:
            f.write(cp.line() + "\n")
    typer.echo(cp.line())
    typer.echo(f"signed seq {cp.seq} ({cp.record_hash[:12]}) with {cp.key}; stored in {log.path}"
               + (f" and appended to {out}" if out else "") + ". Keep a copy of the line outside the log.", err=True)


@audit_app.command("export")
def audit_export(
    run_id: Annotated[str | None, typer.Argument(help="One run (id or prefix); default: every record.")] = None,
    to: Annotated[Path | None, typer.Option("--to", help="Write the run's recorded rules and facts as files in "
                                            "this new directory (rules/, facts/, evaluation.json, record.json).")
                  ] = None,
    audit_db: AuditOpt = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only this symbol's records.")] = None,
) -> None:
    """Records as JSON lines (with output and snapshot hashes); or, with RUN --to DIR, the run's rule and
    fact files, exactly as recorded, for `rules diff`, `evaluate --rules/--facts` and editors.

    Examples:
    $ verdict audit export --symbol 600111
    $ verdict audit export 3f9a2c --to old-run/
    """
    from .audit import export_run, record_document

    log = _reader(audit_db)
    if to is not None:
        if run_id is None:
            raise LookupFailure([Problem(Location(), "usage", "--to needs the run to export.",
                                         "Example: verdict audit export 3f9a2c --to old-run/")])
        rec = log.get(run_id)
        done = export_run(log, rec, to)
        typer.echo(f"run {rec.run_id} ({rec.symbol}, as of {done.as_of}): rules in {done.rules_dir}, facts in "
                   f"{done.facts_dir}, output in {done.evaluation}")
        typer.echo(f"  e.g. verdict rules diff {done.rules_dir} rules --facts {done.facts_dir}", err=True)
        return
    records = [log.get(run_id)] if run_id is not None else log.list(_canonical_symbol(symbol))
    for r in records:
        typer.echo(json.dumps(record_document(r), ensure_ascii=False, sort_keys=True))


def _reflow_help(commands: typer.Typer) -> None:
    """Help wraps at the terminal's width, docstrings at the source's, and typer keeps a docstring's line
    breaks after its first paragraph: join each prose paragraph into one line, keep an example's lines."""
    import inspect

    for info in commands.registered_commands:
        if info.callback is not None and info.callback.__doc__:
            paragraphs = inspect.cleandoc(info.callback.__doc__).split("\n\n")
            info.callback.__doc__ = "\n\n".join(p if p.startswith("Example") else " ".join(p.split("\n"))
                                                for p in paragraphs)
    for group in commands.registered_groups:
        if group.typer_instance is not None:
            _reflow_help(group.typer_instance)


_reflow_help(app)


def main() -> None:
    """Console entry point: map VerdictError to a clean message and exit code, then leave at once."""
    try:
        _main_command()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            sys.stderr.write(f"{exc.code}\n")
        _leave(code)
    _leave(0)


def _leave(code: int) -> None:
    """Exit without tearing the interpreter down. By now every file and the audit log are closed and
    worker processes joined; exit handlers still run (atexit). What is skipped is Python's own
    finalisation, freeing every object of the loaded workspace one by one: ~40 ms of a 0.29 s
    `verdict evaluate 600111`."""
    import atexit

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (BrokenPipeError, OSError):  # the reader went away (`| head`): nothing left to say
        code = code or 1
    atexit._run_exitfuncs()
    os._exit(code)


def _main_command() -> None:
    argv = sys.argv[1:]
    debug = "--debug" in argv
    try:
        rc = app(standalone_mode=False)
        if isinstance(rc, int) and rc:
            raise SystemExit(rc)
    except SystemExit:
        raise
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        # typer vendors click (typer._click); match by shape so either layout works
        if hasattr(exc, "show") and hasattr(exc, "exit_code"):
            if type(exc).__name__ == "NoArgsIsHelpError":
                exc.show()
                raise SystemExit(0) from None
            exc.show()
            raise SystemExit(exc.exit_code or 2) from None
        if type(exc).__name__ == "Abort":
            raise SystemExit(130) from None
        if debug:
            raise
        sys.stderr.write(f"error: internal error: {type(exc).__name__}: {exc}. This is a bug in verdict; "
                         "rerun with --debug for the traceback and report it.\n")
        raise SystemExit(3) from None


def _report(exc: VerdictError) -> None:
    problems = exc.problems
    for p in problems:
        sys.stderr.write(p.render() + "\n")
    if len(problems) > 1:
        sys.stderr.write(f"{len(problems)} problems; nothing was evaluated.\n")


if __name__ == "__main__":  # pragma: no cover
    main()
