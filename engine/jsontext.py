"""JSON text byte for byte as the standard library's json module writes it, written by pydantic's encoder.

The outputs people and the audit log keep were always written by `json.dumps`; its indenting encoder
is pure Python (5 ms for a 200-rule evaluation) and its compact one half the speed of pydantic's. The
two encoders write every text, integer, true, false and null alike, and floats too except those below
1e-4 that pydantic writes in decimal (0.00001) or with a one-digit exponent (1e-6) where json writes
1e-05 and 1e-06 (tests/test_jsontext.py, over generated values). Such a number is looked for in the
text with two literal-led patterns (~0.03 ms over 100 KB); a document holding one, or a string that
merely looks like one, is read back and written by json.dumps. Values pydantic writes and json
cannot (dates, in a model's dump) are written as pydantic's JSON holds them, as ISO text.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pydantic_core

_SMALL_DECIMAL = re.compile(r"0\.0000[0-9]")
_SHORT_EXPONENT = re.compile(r"e-[0-9](?![0-9])")


def pydantic_differs(text: str) -> bool:
    """Whether pydantic's `text` may hold a number json writes otherwise (false alarms allowed)."""
    return _SMALL_DECIMAL.search(text) is not None or any(
        m.start() and text[m.start() - 1].isdigit() for m in _SHORT_EXPONENT.finditer(text))


def compact(value: Any) -> str:
    """`json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)`: a NaN or an
    infinity raises ValueError, as there."""
    text = pydantic_core.to_json(value).decode("utf-8")
    if pydantic_differs(text) or "NaN" in text or "Infinity" in text:
        return json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text


def indented(value: Any, indent: int = 2) -> str:
    """`json.dumps(value, ensure_ascii=False, indent=indent)` (the form `--format json` prints)."""
    text = pydantic_core.to_json(value, indent=indent).decode("utf-8")
    if pydantic_differs(text):
        return json.dumps(json.loads(text), ensure_ascii=False, indent=indent)
    return text
