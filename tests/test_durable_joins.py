"""Rules whose join conditions used to crash durable_rules (or be misread by it), through verdict.

Found by tests/test_compile.py's differential test (hypothesis seed 7, 500 examples: the 376th killed the
process, SIGSEGV in durable's getFrameHashForExpression). Each evaluation runs in a subprocess, so a crash
fails the test instead of killing pytest. The engine defects themselves are pinned in
tests/test_durable_behaviour.py; rete.durable_safe is what avoids them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_compile import write_workspace

from engine.errors import EngineFault
from engine.rete import durable_safe

ROOT = Path(__file__).resolve().parent.parent

EVALUATE = """
import json, sys
from engine.pipeline import Workspace
ev = Workspace.open(sys.argv[1] + "/rules", sys.argv[1] + "/facts").evaluate("600000")
print(json.dumps({"fired": sorted(f.rule for f in ev.fired),
                  "cross_check": [w.message for w in ev.warnings if w.rule == "engine.cross-check"]}))
"""


def _evaluate_in_subprocess(root: Path) -> dict[str, list[str]]:
    out = subprocess.run([sys.executable, "-c", EVALUATE, str(root)], capture_output=True, text=True, timeout=120,
                         cwd=ROOT)
    assert out.returncode == 0, (out.returncode, out.stderr[-3000:])  # -11 was the SIGSEGV
    result: dict[str, list[str]] = json.loads(out.stdout)
    return result


@pytest.mark.parametrize(("when", "holds"), [
    ("stock.a / commodity.p == commodity.p - stock.a", True),  # 0.5 / 1 == 1 - 0.5
    ("not (stock.a / commodity.p != commodity.p - stock.a)", True),  # the differential test's form
    ("stock.a / commodity.p == commodity.p + stock.a", False),
])
def test_an_equality_reading_a_fact_on_both_sides_of_a_join_evaluates(tmp_path: Path, when: str,
                                                                      holds: bool) -> None:
    write_workspace(tmp_path, [when, "stock.a > 0"], {"a": {"value": 0.5}}, {"g": {"value": 1}}, {"p": {"value": 1}})
    result = _evaluate_in_subprocess(tmp_path)
    assert ("p.r0" in result["fired"]) is holds
    assert "p.r1" in result["fired"]
    assert result["cross_check"] == []


def test_a_join_between_three_facts_with_this_fact_on_the_right_evaluates(tmp_path: Path) -> None:
    # the quotient is computed into a field of the commodity fact; the right side reads the commodity's p
    # and two earlier facts
    write_workspace(tmp_path, ["sector.g / commodity.p == commodity.p - stock.a + sector.g - 1", "stock.a > 0"],
                    {"a": {"value": 0.5}}, {"g": {"value": 1}}, {"p": {"value": 2}})
    result = _evaluate_in_subprocess(tmp_path)  # 1 / 2 == 2 - 0.5 + 1 - 1 is false; no crash, no disagreement
    assert "p.r0" not in result["fired"] and "p.r1" in result["fired"]
    assert result["cross_check"] == []


def test_a_join_inside_a_nested_group_is_refused_with_a_reason() -> None:
    rule = {"all": [{"stock": {"kind": "stock"}},
                    {"sector": {"$and": [{"kind": "sector"}, {"$or": [{"g": {"stock": "a"}}, {"g": 1}]}]}}]}
    with pytest.raises(EngineFault) as caught:
        durable_safe(rule)
    text = str(caught.value.problems[0].message)
    assert "`sector`" in text and "$or" in text


def test_durable_safe_leaves_its_input_alone() -> None:
    rule = {"pri": 1, "any": [{"c0$all": [{"stock": {"kind": "stock"}},
                                          {"sector": {"$and": [{"kind": "sector"},
                                                               {"g": {"$sub": {"$l": {"$m": "h"},
                                                                               "$r": {"stock": "a"}}}}]}}]}]}
    before = json.dumps(rule)
    safe = durable_safe(rule)
    assert json.dumps(rule) == before
    conds = safe["any"][0]["c0$all"][1]["sector"]["$and"]
    assert [next(iter(c)) for c in conds] == ["kind", "$gte", "$lte", "$or"]  # == split, then a closing group
