"""Regression tests of durable_rules 2.0.28 itself: the behaviour engine/rete.py is built around.

If an upgrade changes any of these, the adapter's workarounds must be revisited (see README).
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.rete import load_durable

load_durable()  # on Python 3.13, our compat extension must be loaded first (engine/_durable_compat.c)
from durable import engine as durable_engine  # noqa: E402  (never skipped: these tests pin the engine we depend on)


def _host() -> Any:
    host = durable_engine.Host()
    host._d_timer.cancel()
    host._t_timer.cancel()
    return host


def _ruleset(host: Any, rules: dict[str, Any]) -> tuple[str, list[str]]:
    name = f"t{uuid.uuid4().hex[:10]}"
    fired: list[str] = []
    for key, rule in rules.items():
        # durable inspects the code object and wants exactly one parameter: bind the key by closure
        rule["run"] = (lambda k: (lambda c: fired.append(k)))(key)
    host.set_rulesets({name: rules})
    return name, fired


def stock(*conds: Any) -> dict[str, Any]:
    return {"all": [{"m": {"$and": [{"kind": "stock"}, *conds]}}]}


def test_strings_compare_with_numbers_as_true() -> None:
    host = _host()
    name, fired = _ruleset(host, {"r": stock({"$gt": {"name": 3}})})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "name": "abc"})
    assert fired == ["r"]  # why every expression is type-checked before it is compiled


def test_missing_field_in_arithmetic_still_matches() -> None:
    host = _host()
    name, fired = _ruleset(host, {"r": stock({"$gt": {"pe": {"$mul": {"$l": 1.5, "$r": {"$m": "avg"}}}}})})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "pe": 86.26})
    assert fired == ["r"]  # why compile.py adds an $ex test for every field read on the right side


def test_missing_field_never_matches_even_not_equal() -> None:
    host = _host()
    name, fired = _ruleset(host, {"r": stock({"$neq": {"x": 1}}), "s": stock({"$gt": {"y": 0}})})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "y": 1})
    assert fired == ["s"]


def test_negation_is_not_withdrawn_when_the_fact_arrives_later() -> None:
    host = _host()
    rules = {
        "producer": {"pri": 1, **stock()},
        "absent": {"pri": 2, "all": [{"a": {"kind": "stock"}},
                                     {"n$not": {"$and": [{"kind": "signal"}, {"name": "x"}]}}]},
    }
    name, fired = _ruleset(host, rules)
    host._ruleset_directory[name]._actions["producer"]._func = lambda c: (
        fired.append("producer"), c.assert_fact({"kind": "signal", "name": "x"}))
    host.assert_fact(name, {"sid": "a", "kind": "stock"})
    assert fired == ["producer", "absent"]  # why negation rules are stratified behind a phase marker


def test_integers_divide_as_integers() -> None:
    host = _host()
    half = {"$lt": {"p": {"$div": {"$l": {"$m": "a"}, "$r": 2}}}}
    half_float = {"$lt": {"p": {"$div": {"$l": {"$mul": {"$l": {"$m": "a"}, "$r": 1.0}}, "$r": 2}}}}
    name, fired = _ruleset(host, {"int": stock(half), "float": stock(half_float)})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "a": 3, "p": 1})
    assert fired == ["float"]  # 1 < 3 / 2 is false in durable: why compile.py forces a float numerator


def test_in_a_join_an_integer_never_equals_a_double() -> None:
    host = _host()
    name, fired = _ruleset(host, {
        "eq": {"all": [{"stock": {"kind": "stock"}},
                       {"commodity": {"$and": [{"kind": "commodity"},
                                               {"p": {"$add": {"$l": {"stock": "a"}, "$r": 0.5}}}]}}]},
        "gte": {"all": [{"stock": {"kind": "stock"}},
                        {"commodity": {"$and": [{"kind": "commodity"},
                                                {"$gte": {"p": {"$add": {"$l": {"stock": "a"}, "$r": 0.5}}}}]}}]}})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "a": 0.5})
    host.assert_fact(name, {"sid": "a", "kind": "commodity", "p": 1})
    assert fired == ["gte"]  # 1 == 0.5 + 0.5 does not hold: why rete.encode_fact writes every number as a double
    name, fired = _ruleset(host, {"eq": stock({"p": {"$add": {"$l": {"$m": "a"}, "$r": 0.5}}})})
    host.assert_fact(name, {"sid": "b", "kind": "stock", "a": 0.5, "p": 1})
    assert fired == ["eq"]  # within one fact it does


def test_adapter_matches_equality_across_facts_whatever_the_number_types() -> None:
    from engine.rete import encode_fact

    assert encode_fact({"p": 1, "q": True, "r": 2.5}) == '{"p":1.0,"q":true,"r":2.5}'


def test_lower_pri_fires_first_and_facts_fire_every_rule() -> None:
    host = _host()
    name, fired = _ruleset(host, {"late": {"pri": 5, **stock()}, "early": {"pri": 1, **stock()}})
    host.assert_fact(name, {"sid": "a", "kind": "stock"})
    assert fired == ["early", "late"]


def test_events_are_consumed_by_the_first_rule() -> None:
    host = _host()
    name, fired = _ruleset(host, {"a": {"pri": 1, **stock()}, "b": {"pri": 2, **stock()}})
    host.post(name, {"sid": "a", "kind": "stock"})
    assert fired == ["a"]  # why symbols are asserted as facts, not posted as events


def test_exceptions_in_actions_are_swallowed_into_the_state() -> None:
    host = _host()
    name, _ = _ruleset(host, {"r": stock()})
    host._ruleset_directory[name]._actions["r"]._func = lambda c: 1 / 0
    host.assert_fact(name, {"sid": "a", "kind": "stock"})
    assert "division by zero" in host.get_state(name, "a")["exception"]


def test_identical_fact_is_rejected() -> None:
    host = _host()
    name, _ = _ruleset(host, {"r": stock()})
    host.assert_fact(name, {"sid": "a", "kind": "stock"})
    with pytest.raises(durable_engine.MessageObservedException):
        host.assert_fact(name, {"sid": "a", "kind": "stock"})


def test_exponent_constants_are_rejected_and_names_cannot_be_redefined() -> None:
    import durable_rules_engine

    host = _host()
    with pytest.raises(durable_rules_engine.error, match="204"):
        _ruleset(host, {"r": stock({"$gt": {"x": 1e-05}})})
    name, _ = _ruleset(host, {"r": stock()})
    with pytest.raises(Exception, match="already registered"):
        host.set_rulesets({name: {"r": {**stock(), "run": lambda c: None}}})


def test_set_rulesets_consumes_the_run_functions() -> None:
    host = _host()
    definition = {"r": {**stock(), "run": lambda c: None}}
    host.set_rulesets({f"t{uuid.uuid4().hex[:10]}": definition})
    assert "run" not in definition["r"]  # why Compiled.definitions() hands out a deep copy


def test_a_fact_meeting_more_than_64_nodes_fails_the_whole_assert() -> None:
    import durable_rules_engine

    host = _host()
    rules = {f"r{i}": stock({"$gt": {"x": i}}) for i in range(70)}
    name, fired = _ruleset(host, rules)
    with pytest.raises(durable_rules_engine.error, match="303"):
        host.assert_fact(name, {"sid": "a", "kind": "stock", "x": 100})
    assert fired == []  # why compile.py shards rules under a node budget


ADAPTER_SURVIVES = """
from engine.compile import Compiled, CLOSE_KEY, CLOSE_RULE
from engine.rete import Rete
# A shard whose only rule never matches: no action runs unless the adapter makes one run.
shard = {"r0": {"all": [{"stock": {"$and": [{"kind": "stock"}, {"$gt": {"x": 100}}]}}]}, CLOSE_KEY: dict(CLOSE_RULE)}
from engine.compile import CompiledRule
c = Compiled("t", {"t_s": shard}, {"x.r": CompiledRule("x.r", "r0", "t_s", 0, 1, [], {"stock": "stock"}, [], {})},
             {("t_s", "r0"): "x.r"}, {"t_s": {"stock"}}, {}, [])
rete = Rete()
for i in range(300):
    assert rete.run(c, {"stock": {"x": i % 50}}, f"s{i}").firings == []
print("ok")
"""


def test_adapter_deletes_sessions_in_which_no_action_ran() -> None:
    # Without the adapter's close__ action, deleting such a session frees uninitialised pointers.
    out = subprocess.run([sys.executable, "-c", ADAPTER_SURVIVES], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


ADAPTER_KEEPS_SESSION_MEMORY = """
import resource, sys
from engine.pipeline import Workspace, durable_facts
from engine.rete import engine
ws = Workspace.open(sys.argv[1] + "/rules", sys.argv[1] + "/facts")
facts = [durable_facts(ws.symbol_facts(s), ws.compiled) for s in ws.symbols()]
for i in range(20):
    engine().run(ws.compiled, facts[i % len(facts)], f"w{i}")
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(300):
    engine().run(ws.compiled, facts[i % len(facts)], f"s{i}")
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 300)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc allocator tuning")
def test_adapter_reuses_session_memory_instead_of_faulting_it_in() -> None:
    # Each session is ~0.7 MB, allocated and cleared on creation: served by mmap it costs ~170 page
    # faults per session (5x the matching). The adapter pins glibc's thresholds so the heap reuses it.
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", ADAPTER_KEEPS_SESSION_MEMORY, root], capture_output=True, text=True,
                         timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr[-2000:]
    assert float(out.stdout) < 20, f"{out.stdout.strip()} page faults per session"


def test_a_failing_run_still_deletes_its_sessions() -> None:
    from engine.compile import CLOSE_KEY, CLOSE_RULE, Compiled, CompiledRule
    from engine.rete import engine

    shard = {"r0": {"all": [{"stock": {"$and": [{"kind": "stock"}, {"$gt": {"x": 1}}]}}]},
             CLOSE_KEY: dict(CLOSE_RULE)}
    # by_key does not know r0: reading its firing back fails inside the run.
    broken = Compiled("broken", {"t_broken": shard},
                      {"x.r": CompiledRule("x.r", "r0", "t_broken", 0, 1, [], {"stock": "stock"}, [], {})},
                      {}, {"t_broken": {"stock"}}, {}, [])
    for i in range(1100):  # more than the 1,024 live sessions a ruleset holds
        with pytest.raises(KeyError):
            engine().run(broken, {"stock": {"x": 5}}, f"f{i}")
    assert engine().run(broken, {"stock": {"x": 0}}, "after").firings == []


_ENCODE_RULESET: dict[str, int] = {}


def _accepts(text: str) -> bool:
    import durable_rules_engine

    if "h" not in _ENCODE_RULESET:
        _ENCODE_RULESET["h"] = durable_rules_engine.create_ruleset(
            f"encode_{uuid.uuid4().hex[:8]}", '{"r": {"all": [{"m": {"$gt": {"x": -100000000}}}]}}')
    handle = _ENCODE_RULESET["h"]
    code, state = durable_rules_engine.assert_fact(handle, text)
    try:
        started = durable_rules_engine.start_action_for_state(handle, state)
        if started:
            durable_rules_engine.complete_and_start_action(handle, state)
        return code == 0 and bool(started)
    finally:
        durable_rules_engine.delete_state(handle, "e")


@settings(max_examples=300, deadline=None)
@given(x=st.floats(min_value=-1e7, max_value=1e300, allow_nan=False, allow_infinity=False),
       label=st.text(max_size=12), flag=st.booleans(), n=st.integers(-10**12, 10**12))
def test_encoded_facts_read_back_exactly_and_durable_accepts_them(x: float, label: str, flag: bool, n: int) -> None:
    from engine.rete import encode_fact

    fact = {"sid": "e", "kind": "stock", "x": x, "label": label, "flag": flag, "n": n, "gone": None}
    text = encode_fact(fact)
    assert json.loads(text) == {k: v for k, v in fact.items() if v is not None}
    assert _accepts(text), text  # exponent forms such as 1e-05 would be refused (error 204)


def test_encoding_refuses_what_durable_cannot_hold() -> None:
    from engine.rete import encode_fact

    with pytest.raises(ValueError, match="not finite"):
        encode_fact({"x": float("nan")})
    with pytest.raises(TypeError, match="unsupported type"):
        encode_fact({"x": [1, 2]})


# ----------------------------------------------------------------------------- join conditions
# durable evaluates the conditions of a joined fact that read an earlier fact (join conditions) as one
# expression sequence per fact; three defects of that code are measured here, raw, and through
# rete.durable_safe, which the adapter applies to every rule it registers.

JOIN_RUN = """
import json, sys
from engine.rete import durable_safe, load_durable
d = load_durable()
rule = json.loads(sys.argv[1])
if sys.argv[2] == "safe":
    rule = durable_safe(rule)
h = d.create_ruleset("j" + sys.argv[2], json.dumps({"r": rule}))
fired = 0
for fact in ('{"sid":"1","kind":"stock","a":1.0}', '{"sid":"1","kind":"commodity","p":3.0,"q":2.0,"x":1.0}'):
    code, state = d.assert_fact(h, fact)
    started = d.start_action_for_state(h, state)
    message = started[1] if started else None
    while message:
        fired += 1
        message = d.complete_and_start_action(h, state)
print(fired)
"""


def _join(*commodity_conds: Any) -> dict[str, Any]:
    return {"all": [{"stock": {"kind": "stock"}}, {"commodity": {"$and": [{"kind": "commodity"}, *commodity_conds]}}]}


def _run_join(rule: dict[str, Any], mode: str) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parent.parent
    return subprocess.run([sys.executable, "-c", JOIN_RUN, json.dumps(rule), mode], capture_output=True, text=True,
                          timeout=120, cwd=root)


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signal in the return code")
def test_an_equality_reading_this_fact_and_another_kills_the_process() -> None:
    from engine.rete import durable_safe

    # q == p - stock.a, on the commodity: durable hashes the right side to index the join with no message
    # to read p from (a NULL dereference in getFrameHashForExpression), as soon as the stock fact arrives.
    mixed = _join({"q": {"$sub": {"$l": {"$m": "p"}, "$r": {"stock": "a"}}}})
    raw = _run_join(mixed, "raw")
    assert raw.returncode == -11, (raw.returncode, raw.stdout, raw.stderr[-1000:])  # SIGSEGV
    safe = _run_join(mixed, "safe")  # written as >= and <=, which durable never hashes
    assert safe.returncode == 0 and safe.stdout.strip() == "1", safe.stderr[-2000:]  # 2 == 3 - 1 holds
    # an equality reading only the other fact, or only this one, is hashed safely and left as it is
    other, own = {"q": {"$add": {"$l": {"stock": "a"}, "$r": 1}}}, {"q": {"$sub": {"$l": {"$m": "p"}, "$r": 1}}}
    assert durable_safe(_join(own)) == _join(own)  # no join condition: nothing to rewrite
    assert durable_safe(_join(other))["all"][1]["commodity"]["$and"][:2] == [{"kind": "commodity"}, other]
    for fine in (other, own):
        out = _run_join(_join(fine), "raw")
        assert out.returncode == 0 and out.stdout.strip() == "1", out.stderr[-2000:]


def test_a_join_condition_after_a_nested_or_is_never_evaluated() -> None:
    from engine.rete import durable_safe

    host = _host()
    never = {"$gte": {"q": {"$add": {"$l": {"stock": "a"}, "$r": 5}}}}  # 2 >= 1 + 5: false
    bounded = {"$or": [{"x": 1}, {"x": 2}]}  # as compile.py writes a fact known only as a bound
    name, fired = _ruleset(host, {"after": _join(bounded, never), "before": _join(never, bounded)})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "a": 1.0})
    host.assert_fact(name, {"sid": "a", "kind": "commodity", "q": 2.0, "x": 1.0})
    assert fired == ["after"]  # wrong: the false join condition after the $or was skipped
    name, fired = _ruleset(host, {"after": durable_safe(_join(bounded, never)),
                                  "before": durable_safe(_join(never, bounded))})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "a": 1.0})
    host.assert_fact(name, {"sid": "a", "kind": "commodity", "q": 2.0, "x": 1.0})
    assert fired == []  # nested groups moved behind the join conditions


def test_a_failing_last_join_condition_needs_a_group_after_it() -> None:
    # When the last join condition of an $and fails, durable's short-circuit steps past the sequence's
    # end marker and scans on (up to ~3 MB) for another: AddressSanitizer reports a heap-buffer-overflow,
    # an ordinary build reads whatever follows the ruleset's node table (a crash if nothing is mapped
    # there). A nested group after the join conditions ends the scan at its own end marker.
    from engine.rete import durable_safe

    fails = {"$lte": {"q": {"stock": "a"}}}
    bounded = {"$or": [{"x": 1}, {"x": 2}]}
    assert durable_safe(_join(bounded, fails))["all"][1]["commodity"]["$and"] == [
        {"kind": "commodity"}, fails, bounded]
    assert durable_safe(_join(fails))["all"][1]["commodity"]["$and"] == [
        {"kind": "commodity"}, fails, {"$or": [{"$ex": {"kind": 1}}]}]
    host = _host()
    name, fired = _ruleset(host, {"holds": durable_safe(_join({"$gte": {"q": {"stock": "a"}}})),
                                  "fails": durable_safe(_join(fails)),
                                  "bounded": durable_safe(_join(bounded, {"$gte": {"q": {"stock": "a"}}}))})
    host.assert_fact(name, {"sid": "a", "kind": "stock", "a": 1.0})
    host.assert_fact(name, {"sid": "a", "kind": "commodity", "q": 2.0, "x": 3.0})
    assert fired == ["holds"]  # the closing group changes no answer


SID_RUN = """
import ctypes, json, sys
from engine.rete import load_durable
d = load_durable()
h = d.create_ruleset("sid" + sys.argv[1], json.dumps({"r": {"all": [
    {"stock": {"kind": "stock"}},
    {"commodity": {"$and": [{"kind": "commodity"}, {"$gte": {"sid": {"stock": "sid"}}}]}}]}}))
stock = "".join(['{"sid":"1",', '"kind":"stock"}'])  # a fresh str: durable reads its buffer
d.assert_fact(h, stock)
if sys.argv[1] == "overwrite":  # what happens to the text's memory once the caller lets it go
    at = id(stock) + sys.getsizeof(stock) - len(stock) - 1 + stock.index("1")
    ctypes.memmove(at, b"9", 1)
code, state = d.assert_fact(h, '{"sid":"1","kind":"commodity"}')
print(1 if d.start_action_for_state(h, state) else 0)
"""


# Not in the default run: it reads memory durable should not read, and in two of four full runs of the suite
# (2026-11-26) both of its processes died without a word, while it passed alone, in partial runs and in CI.
@pytest.mark.probe
def test_a_stored_facts_sid_still_points_at_the_asserted_text() -> None:
    # durable's copy of a stored fact re-points every string at the copy except `sid` and `id`: a join
    # reading an earlier fact's sid compares whatever lies where the caller's text was (a test doing so
    # passed alone and failed after others). Why the closing group above is not a condition on sid.
    root = Path(__file__).resolve().parent.parent
    runs = {mode: subprocess.run([sys.executable, "-X", "faulthandler", "-c", SID_RUN, mode], capture_output=True,
                                 text=True, timeout=120, cwd=root) for mode in ("keep", "overwrite")}
    assert all(r.returncode == 0 for r in runs.values()), [(r.returncode, r.stdout[-300:], r.stderr[-1500:])
                                                            for r in runs.values()]
    assert runs["keep"].stdout.strip() == "1"  # "1" >= "1"
    assert runs["overwrite"].stdout.strip() == "0"  # "1" >= "9": the stored stock fact's sid changed with the text
