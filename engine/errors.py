"""Errors as data: every problem with a rule or fact file keeps where it is and how to fix it.

One hierarchy (after rule-engine's): `VerdictError` carries a list of `Problem`s so a file is
reported in one pass, not one mistake per run. Renderers live here so the CLI never builds prose.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True, order=True)
class Location:
    """A place in a user's file; line and column are 1-based, 0 means unknown."""

    file: str = ""
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if not self.file:
            return "<input>"
        if not self.line:
            return self.file
        return f"{self.file}:{self.line}:{self.col or 1}"

    def shifted(self, col_offset: int) -> Location:
        return Location(self.file, self.line, (self.col or 1) + col_offset)


@dataclass(frozen=True)
class Problem:
    """One finding: where, a stable code, what is wrong, what to do about it, and the input that
    failed (the value or expression text as written; None when there is no single one)."""

    loc: Location
    code: str
    message: str
    hint: str = ""
    severity: str = "error"
    rule: str = ""
    input: Any = None

    def render(self) -> str:
        """`path:line:col: severity CODE: message hint [rule]`, as ruff and compilers print them: the
        code is stable, for searching the README and for tools that read the lines."""
        where = f"{self.loc}: " if self.loc.file else ""
        text = f"{where}{self.severity} {self.code}: {self.message}"
        if self.hint:
            text += f" {self.hint}"
        if self.rule:
            text += f" [{self.rule}]"
        return text

    def as_dict(self) -> dict[str, object]:
        return {
            "file": self.loc.file,
            "line": self.loc.line,
            "col": self.loc.col,
            "severity": self.severity,
            "code": self.code,
            "message": self.message,
            "hint": self.hint,
            "rule": self.rule,
            "input": _jsonable(self.input),
        }


def _jsonable(v: Any) -> Any:
    """The failed input as JSON can carry it: dates as ISO text, anything else not JSON as its text."""
    if v is None or isinstance(v, str | int | float | bool):
        return v
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return str(v)


@dataclass
class VerdictError(Exception):
    """Bad input of any kind. The CLI prints `render()` and exits with `exit_code`."""

    problems: list[Problem] = field(default_factory=list)
    exit_code: int = 2

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join(p.render() for p in self.problems)

    def __str__(self) -> str:
        return self.render()


class RuleError(VerdictError):
    """A rule pack or policy file is malformed or does not type-check."""


class FactError(VerdictError):
    """A fact, source or catalog file is malformed."""


class LookupFailure(VerdictError):
    """An unknown symbol, directory or fact path named on the command line."""


class EngineFault(VerdictError):
    """durable_rules misbehaved (a swallowed action error, a failed assert): never a silent result."""


def problem(
    path: str | Path, line: int, col: int, code: str, message: str, hint: str = "", rule: str = "",
    input: Any = None,
) -> Problem:
    return Problem(Location(str(path), line, col), code, message, hint, rule=rule, input=input)


def did_you_mean(name: str, candidates: list[str] | set[str], *, n: int = 3, prefix: str = "") -> str:
    """A did-you-mean sentence (difflib, as STYLE.md asks), or '' when nothing is close."""
    import difflib

    matches = [prefix + m for m in difflib.get_close_matches(name, sorted(candidates), n=n, cutoff=0.7)]
    if not matches:
        return ""
    if len(matches) == 1:
        return f"Did you mean '{matches[0]}'?"
    return "Did you mean " + ", ".join(f"'{m}'" for m in matches[:-1]) + f" or '{matches[-1]}'?"
