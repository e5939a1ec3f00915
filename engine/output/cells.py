"""How one value reads in a table, a CSV file, a JSON document or a Markdown cell: shared by every
renderer, so a number looks the same in a screen, a what-if and a grid."""

from __future__ import annotations

from typing import Any

from .. import expr


def cell(v: Any) -> str:
    """A value as people read it: numbers to 4 decimals at most, true/false, empty when absent."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return expr.fmt_num(round(v, 4))
    return str(v)


def data(v: Any) -> Any:
    """A value for machines: floats to 6 decimals (what the JSON of an evaluation carries)."""
    return round(v, 6) if isinstance(v, float) else v


def csv_cell(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        text = repr(round(v, 6))  # every digit the JSON carries, not the 4 a table shows
        return text[:-2] if text.endswith(".0") else text
    return "" if v is None else v


def md(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("|", "\\|").replace("\n", " ")


def given(v: Any) -> str:
    """A value a user set: a number, or a bound ({"gt": 80} -> "> 80")."""
    if isinstance(v, dict):
        sym = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
        return " and ".join(f"{sym[k]} {cell(x)}" for k, x in v.items())
    return cell(v)
