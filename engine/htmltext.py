"""Text for the HTML pages: escaping, links and number formats, shared by the report's renderers.

Everything from a file (names, notes, messages, titles, addresses) is user text: it goes through `e`,
and an address becomes a link only when it is http(s).
"""

from __future__ import annotations

from html import escape
from typing import Any
from urllib.parse import urlsplit

from . import expr


def e(text: Any) -> str:
    return escape(str(text), quote=True)


def href(url: str | None) -> str | None:
    """A source address usable as a link: http(s) only (never javascript: or file:)."""
    if not url:
        return None
    try:
        scheme = urlsplit(url.strip()).scheme.lower()
    except ValueError:
        return None
    return url.strip() if scheme in ("http", "https") else None


def num(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return expr.fmt_num(round(float(v), 6))
    return str(v)


def pct(v: float | None) -> str:
    return "" if v is None else f"{v:+.1f}%"


def flat(v: Any) -> str:
    """Any JSON value as one line of text (for fields this renderer does not know yet)."""
    if isinstance(v, dict):
        return ", ".join(f"{k} {flat(x)}" for k, x in v.items())
    if isinstance(v, list):
        return ", ".join(flat(x) for x in v)
    return num(v)


def data(value: Any) -> Any:
    """A model as plain JSON data; plain data as it is."""
    return value.model_dump(mode="json") if hasattr(value, "model_dump") else value
