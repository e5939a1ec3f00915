"""The limits verdict enforces on what it reads, in one place (the README's "Limits" lists them).

Each is far above anything a real rule pack, fact file or price history needs, and low enough that
a malformed or hostile file fails fast with a clear error instead of exhausting memory or the
interpreter's stack: an alias bomb, a 600-deep `not not ...`, a `{x:>999999999999}` template, a
price of 1.7e308. Checking and evaluating share them, so `rules check` passes exactly what
`evaluate` can run.
"""

from __future__ import annotations

import math

# Files
MAX_YAML_BYTES = 8 * 1024 * 1024  # a rule pack or fact file (the largest bundled one is ~10 KB)
MAX_CSV_BYTES = 64 * 1024 * 1024  # one price file (30 years of daily bars is ~0.5 MB)

# YAML structure, counted on the parsed node graph before any value is built
MAX_YAML_DEPTH = 32  # nesting of mappings and lists (a rule is 5 deep)
MAX_YAML_NODES = 200_000  # nodes with every alias expanded (5,000 rules of 40 nodes each)
MAX_YAML_ALIASES = 1_000  # alias references (*name) in one file

# Expressions (`when`, entry and target values, template placeholders)
MAX_EXPR_CHARS = 2_000  # characters of one expression
MAX_EXPR_DEPTH = 40  # nesting of operators, calls and parentheses (`a + b + c` is 2 deep)
MAX_FORMAT_WIDTH = 40  # `{stock.pe_ttm:>12.1f}`: width of a template placeholder
MAX_FORMAT_PRECISION = 12  # and its digits after the point

# Numbers
MAX_ABS_NUMBER = 1e15  # any number fact (market caps in RMB are ~1e12)
MAX_PRICE = 1e6  # one share, in the listing currency (adjusted histories included)
MIN_PRICE = 0.001  # above zero: A-share prices tick in 0.01
MAX_VOLUME = 1e13  # one day's volume, in shares or lots


def number_problem(value: float, low: float | None = None, high: float | None = None) -> str:
    """'' when `value` is finite and within [low, high] (and within MAX_ABS_NUMBER), else why not."""
    if not math.isfinite(value):
        return f"{value} is not a finite number"
    if abs(value) > MAX_ABS_NUMBER:
        return f"{value:g} is beyond the largest number verdict accepts ({MAX_ABS_NUMBER:g})"
    if low is not None and value < low:
        return f"{value:g} is below the lowest value allowed ({low:g})"
    if high is not None and value > high:
        return f"{value:g} is above the highest value allowed ({high:g})"
    return ""
