"""The `verdict` command: parse arguments, call the library, render. No logic of its own.

Errors from bad input print as one paragraph per problem (file:line:col, what, how to fix) and
exit with code 2; engine faults with 3; a traceback only with --debug.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from .errors import Location, LookupFailure, Problem, VerdictError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="verdict: rule-based investment ratings, every one traced to rules and sourced facts.")
rules_app = typer.Typer(no_args_is_help=True, help="Check and inspect rule packs.")
app.add_typer(rules_app, name="rules")

_state = {"debug": False}


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"


RulesOpt = Annotated[Path, typer.Option("--rules", help="Directory of YAML rule packs and policy.yaml.")]
FactsOpt = Annotated[Path, typer.Option("--facts", help="Directory of fact files (catalog, sources, stocks, sectors).")]


@app.callback()
def _main(debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False) -> None:
    _state["debug"] = debug


def _console() -> object:
    from rich.console import Console

    console = Console(soft_wrap=False)
    if not console.is_terminal:  # piped: do not wrap or truncate at a guessed 80 columns
        console = Console(soft_wrap=False, width=200)
    return console


@app.command()
def evaluate(
    symbol: Annotated[str | None, typer.Argument(help="600111, 600111.SH or the stock's name.")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Evaluate every symbol with facts.")] = False,
    rules: RulesOpt = Path("rules"),
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    explain: Annotated[bool, typer.Option("--explain", help="Print the derivation tree.")] = False,
) -> None:
    """Evaluate a stock (or --all) on the rule packs and facts; print rating, target, entries, warnings."""
    from .explain import render_markdown, render_rows, render_table, render_tree
    from .pipeline import Workspace

    if (symbol is None) == (not all_):
        raise LookupFailure([Problem(Location(), "usage", "give a SYMBOL or --all, not both and not neither.",
                                     "Example: verdict evaluate 600111, or verdict evaluate --all.")])
    ws = Workspace.open(rules, facts)
    evs = ws.evaluate_all() if all_ else [ws.evaluate(symbol or "")]
    ranks = {name: i for i, name in enumerate(ws.book.policy.scale.names())}
    evs.sort(key=lambda e: (ranks.get(e.rating, len(ranks)), -e.score, e.symbol))
    if format is Format.json:
        payload = [e.model_dump(mode="json") for e in evs]
        typer.echo(json.dumps(payload if all_ else payload[0], ensure_ascii=False, indent=2))
        return
    if explain:
        for ev in evs:
            typer.echo(render_tree(ev))
        return
    if format is Format.markdown:
        for ev in evs:
            typer.echo(render_markdown(ev))
        return
    console = _console()
    if all_:
        render_rows(evs, console)
    else:
        render_table(evs[0], console)


@rules_app.command("check")
def rules_check(
    directory: Annotated[Path, typer.Argument(help="Rules directory.")] = Path("rules"),
    facts: FactsOpt = Path("facts"),
    format: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
) -> None:
    """Load, type-check and compile every pack; report problems as file:line:col: severity: message."""
    from .compile import compile_rules
    from .load import load_facts, load_rules

    base = load_facts(facts)
    try:
        book = load_rules(directory, base.catalog)
        compiled = compile_rules(book, base.catalog)
    except VerdictError as exc:
        if format is Format.json:
            typer.echo(json.dumps([p.as_dict() for p in exc.problems], indent=2, ensure_ascii=False))
        else:
            for p in exc.problems:
                typer.echo(p.render())
            typer.echo(f"{len(exc.problems)} problem(s) found.", err=True)
        raise typer.Exit(1) from None
    if format is Format.json:
        typer.echo("[]")
    else:
        typer.echo(f"{len(book.rules)} rules in {len(compiled.shards)} rulesets: no problems found.")


def main() -> None:
    """Console entry point: map VerdictError to a clean message and exit code."""
    argv = sys.argv[1:]
    debug = "--debug" in argv
    try:
        app(standalone_mode=False)
    except VerdictError as exc:
        if debug:
            raise
        _report(exc)
        raise SystemExit(exc.exit_code) from None
    except SystemExit:
        raise
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except Exception as exc:
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            raise SystemExit(exc.exit_code) from None
        if isinstance(exc, click.exceptions.Abort):
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
