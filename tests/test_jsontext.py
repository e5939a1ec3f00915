"""engine/jsontext.py: JSON text as the standard library writes it, from pydantic's encoder. The outputs
and audit records written so for years must not change by a byte."""

from __future__ import annotations

import json
import math

import pydantic_core
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.jsontext import compact, indented, pydantic_differs

scalars = (st.floats(allow_nan=False, allow_infinity=False) | st.integers(-2**70, 2**70) | st.booleans() | st.none()
           | st.text(st.characters(codec="utf-8")))
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(st.characters(codec="utf-8"), max_size=8), inner, max_size=4),
                         max_leaves=20)


@settings(max_examples=3000)
@given(scalars)
def test_pydantic_writes_every_value_as_json_does_or_the_difference_is_found(value: object) -> None:
    ours, theirs = pydantic_core.to_json(value).decode(), json.dumps(value, ensure_ascii=False)
    assert ours == theirs or (isinstance(value, float) and pydantic_differs(ours)), (value, ours, theirs)


@settings(max_examples=1000)
@given(documents)
def test_compact_and_indented_are_json_dumps_byte_for_byte(value: object) -> None:
    assert compact(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    assert indented(value) == json.dumps(value, ensure_ascii=False, indent=2)


def test_the_numbers_pydantic_writes_otherwise_take_the_standard_library_s_way() -> None:
    value = {"a": 1e-06, "b": [2.5e-05, -7e-09], "c": "1e-6 and 0.00001 in a text: a false alarm only"}
    assert pydantic_core.to_json(value) != json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
    assert compact(value) == '{"a":1e-06,"b":[2.5e-05,-7e-09],"c":"1e-6 and 0.00001 in a text: a false alarm only"}'
    assert indented(value) == json.dumps(value, ensure_ascii=False, indent=2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_compact_refuses_what_json_refuses(bad: float) -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        compact({"x": [1.0, bad]})
