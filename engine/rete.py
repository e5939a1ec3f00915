"""Stage 4, run: the only module that imports durable_rules.

We drive durable's C engine (`durable_rules_engine`) directly rather than through its Python Host:
the Host runs every action through a closure, a JSON round trip of the session state and a state
update that is matched again through the network, which cost about four times what the matching
does. Every known quirk of durable_rules 2.0.28 is handled here and nowhere else:
- rulesets are registered once per content hash (durable cannot redefine a name), with no Host
  and so none of its dispatch timer threads (they race the caller);
- one session per evaluation and ruleset, always deleted (1,024 live sessions at most per ruleset);
- each session's state (~0.5 MB for 25 rules with joins) is allocated and cleared on creation and
  freed on deletion: glibc serves blocks that size with mmap and returns them on free, unless an
  earlier free happened to raise its dynamic threshold. Whether it had was down to memory layout:
  the same run went at 430 or 2,300 symbols/s from one process start to the next, the slow runs
  spending their time in page faults. The engine pins the thresholds (`mallopt`) so the heap keeps
  that memory and reuses it;
- facts serialised by us, once per evaluation however many rulesets read them: finite numbers
  only, no `1e-05` forms (durable rejects them);
- firings are read back by us in a loop (start action, complete and start the next); nothing
  runs inside durable, so no exception can be swallowed there;
- a rule fires its effects once per session, extra matches are recorded but not re-emitted;
- derived signals are asserted in one batch per ruleset, and the run goes to quiescence before
  each negation phase marker;
- delete_state frees two pointers that only an action initialises: deleting a session in which
  no action ever ran frees garbage (a crash, or worse, a corrupted heap). Before deleting, every
  session that saw no action gets a `close__` fact whose no-op rule is started and completed;
- conditions that join facts are rewritten around three defects of durable's join code, one of them a
  NULL dereference (see `durable_safe`).
"""

from __future__ import annotations

import ctypes
import json
import math
import re
import sys
import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .compile import CLOSE_KEY, Compiled
from .errors import EngineFault, Location, Problem

_ENGINE_ERRORS = {
    202: "a number is not finite",
    204: "a number is written in a form the engine cannot parse",
    302: "a fact has too many properties",
    303: "a fact met more condition nodes than the engine's stack holds (64)",
    307: "the engine lost track of a session",
}
_NOT_HANDLED = 1  # assert result: no rule of the ruleset tests this fact


class Firing:
    """One rule that fired, with the facts exactly as durable matched them (its own JSON, parsed on use).
    A plain slotted class: a 200-rule screen makes ~45 per symbol."""

    __slots__ = ("__dict__", "extra_matches", "message", "rule", "seq", "shard")

    def __init__(self, rule: str, seq: int, shard: str, message: str, extra_matches: int = 0) -> None:
        self.rule, self.seq, self.shard, self.message, self.extra_matches = rule, seq, shard, message, extra_matches

    def __repr__(self) -> str:
        return f"Firing(rule={self.rule!r}, seq={self.seq}, shard={self.shard!r}, extra_matches={self.extra_matches})"

    @cached_property
    def matched(self) -> dict[str, dict[str, Any]]:
        """alias -> fact as durable matched it (without the session id)."""
        body: dict[str, Any] = next(iter(json.loads(self.message).values()), {})
        return {alias: {k: v for k, v in fact.items() if k != "sid"}
                for alias, fact in body.items() if isinstance(fact, dict)}

    @cached_property
    def signal_sources(self) -> list[str]:
        """The rules whose signal facts this firing matched, read off durable's message without parsing
        all of it: signal facts are written by `encode_fact` with their fields in a fixed order."""
        return sorted({by[1:-1] if "\\" not in by else json.loads(by) for by in _SIGNAL_BY.findall(self.message)})


_SIGNAL_BY = re.compile(r'"kind":"signal","name":"(?:[^"\\]|\\.)*","score":[-+0-9.eE]+,"by":("(?:[^"\\]|\\.)*")')


@dataclass
class DurableResult:
    """What durable returned for one symbol's session: the rules that fired, in firing order, and the
    facts as they were asserted (from which a trace quotes durable's own messages)."""

    firings: list[Firing] = field(default_factory=list)
    asserted: dict[str, str] = field(default_factory=dict)  # fact kind -> the fact as asserted (without sid)
    sid_head: str = ""  # what precedes a fact's fields in durable's messages: `{"sid":"s1",`


# ----------------------------------------------------------------------------- encoding


def _number(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    if not math.isfinite(v):
        raise ValueError("not finite")
    text = repr(v)
    if "e" in text:
        mantissa, _, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        text = f"{mantissa}e{exponent}"
    return text


_EXPONENT = re.compile(r"[0-9]e[-+]?[0-9]")


def encode_fact(fact: dict[str, Any]) -> str:
    """JSON for one flat fact (None fields left out), with numbers written as durable can read them.

    json.dumps writes floats as repr() does, with exponents below 1e-4 and from 1e16 on (durable
    refuses `1e-05`): a text with an exponent-like run is written again field by field.

    Every number is written as a double: in a join, durable's `==` never holds between an integer
    and a double (`commodity.p == stock.a + 0.5` fails for p = 1, a = 0.5), while every other
    comparison converts. Doubles everywhere make equality mean what the evaluator means by it."""
    plain = {k: (float(v) if type(v) is int else v) for k, v in fact.items() if v is not None}
    try:
        text = json.dumps(plain, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        bad = next(k for k, v in plain.items() if isinstance(v, float) and not math.isfinite(v))
        raise ValueError(f"fact field {bad!r} is not finite") from None
    nested = [k for k, v in plain.items() if isinstance(v, (list, tuple, dict))] if "[" in text or "{" in text[1:] \
        else []
    if nested:
        raise TypeError(f"fact field {nested[0]!r} has unsupported type {type(plain[nested[0]]).__name__}")
    return _encode_slow(plain) if _EXPONENT.search(text) else text


def _encode_slow(fact: dict[str, Any]) -> str:
    parts = []
    for k, v in fact.items():
        if isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, (int, float)):
            text = _number(v)
        else:
            text = json.dumps(v, ensure_ascii=False)
        parts.append(f"{json.dumps(k, ensure_ascii=False)}:{text}")
    return "{" + ",".join(parts) + "}"


# ----------------------------------------------------------------------------- join conditions

_NESTED = ("$and", "$or")
_OPAQUE = ("$iall", "$iany")  # conditions over array items: the compiler never writes them


def durable_safe(definition: dict[str, Any]) -> dict[str, Any]:
    """A rule definition (as compile.py writes it) rewritten around three defects of durable_rules 2.0.28
    in the conditions of a joined fact, those that read another fact ("join conditions", which durable
    evaluates in the order written, in one expression sequence per fact):

    - an equality whose right side reads both this fact (`$m`) and another one (`x == y - stock.a` on a
      commodity) is hashed with no message: a NULL dereference, SIGSEGV, whatever the facts. It is
      written as `>=` and `<=` (never hashed; same meaning for the finite numbers we assert);
    - a join condition that fails as the last of its `$and` makes durable skip past the sequence's end
      looking for it (reading up to ~3 MB beyond the ruleset's node table: a crash or not, depending on
      what lies there). A nested group after the join conditions stops that skip at its own end: the
      bounded facts' `$or`s where there are some, else `{"$or": [{"$ex": {"kind": 1}}]}`, which every
      fact meets (a join condition cannot serve: durable keeps no copy of a stored fact's `sid`);
    - nothing after a nested `$or`/`$and` of the same fact is evaluated (a join condition after a bounded
      fact's `$or` never failed): nested groups go after the join conditions, and a nested group that
      itself reads another fact is refused (the compiler writes none).

    The input is not modified; a definition with no join condition comes back equal to it."""
    out = dict(definition)
    if "all" in out:
        out["all"] = _safe_elements(out["all"])
    if "any" in out:
        out["any"] = [{name: _safe_elements(elements) for name, elements in branch.items()} for branch in out["any"]]
    return out


def _safe_elements(elements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not elements:
        return elements
    out = [elements[0]]
    for element in elements[1:]:
        (alias, cond), = element.items()
        conds = cond["$and"] if isinstance(cond, dict) and list(cond) == ["$and"] else [cond]
        plain: list[Any] = []
        joins: list[Any] = []
        nested: list[Any] = []
        for c in conds:
            key = next(iter(c)) if isinstance(c, dict) and len(c) == 1 else None
            if key in _NESTED:
                if _reads_other(c):
                    raise EngineFault([Problem(Location(), "engine-join-in-group",
                                               f"a condition on `{alias}` joins another fact inside `{key}`, "
                                               "which durable_rules 2.0.28 evaluates wrongly.",
                                               "This is a defect in verdict's compiler; report it with the "
                                               "rule file.")], exit_code=3)
                nested.append(c)
            elif key is not None and key not in _OPAQUE and _reads_other(c):
                joins.extend(_unhashed(c))
            else:
                plain.append(c)
        if not joins:
            out.append(element)
            continue
        out.append({alias: {"$and": [*plain, *joins, *(nested or [{"$or": [{"$ex": {"kind": 1}}]}])]}})
    return out


def _reads_other(cond: Any) -> bool:
    """Whether a condition reads a field of another fact (an alias reference on a right side)."""
    (key, value), = cond.items()
    if key in _NESTED:
        return any(_reads_other(c) for c in value)
    if key.startswith("$"):
        if not isinstance(value, dict) or len(value) != 1:
            return False
        value = next(iter(value.values()))
    return _refs(value)[1]


def _refs(value: Any) -> tuple[bool, bool]:
    """(reads this fact, reads another fact) for the right side of a comparison."""
    if not isinstance(value, dict):
        return False, False
    own = other = False
    for k, v in value.items():
        if k == "$m":
            own = True
        elif k in ("$l", "$r") or k.startswith("$"):
            o, t = _refs(v)
            own, other = own or o, other or t
        else:
            other = True
    return own, other


def _unhashed(cond: dict[str, Any]) -> list[dict[str, Any]]:
    (key, value), = cond.items()
    if not key.startswith("$") and all(_refs(value)):
        return [{"$gte": {key: value}}, {"$lte": {key: value}}]
    return [cond]


# ----------------------------------------------------------------------------- engine


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


def keep_session_memory() -> bool:
    """Make glibc serve and keep durable's per-session blocks from the heap (see the module note)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc: nothing to tune
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 16 * 2**20)) and bool(mallopt(_M_TRIM_THRESHOLD, 128 * 2**20))


def load_durable() -> Any:
    """durable_rules' C extension, importable on every supported Python.

    Python 3.13 removed `PyEval_CallObject`, which durable_rules 2.0.28's extension links against;
    our own small extension (engine/_durable_compat.c, built at install on 3.13 and later) supplies
    it, and must be loaded with RTLD_GLOBAL before durable's so the dynamic linker finds the symbol
    there. Drop this once durable_rules ships a release built without it. Tests and the bench call
    this before importing durable's Python package too."""
    if sys.version_info >= (3, 13) and "durable_rules_engine" not in sys.modules:
        import os

        flags = sys.getdlopenflags()
        sys.setdlopenflags(flags | os.RTLD_GLOBAL)
        try:
            from . import _durable_compat  # type: ignore[attr-defined]  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "verdict's compatibility extension for durable_rules on Python 3.13 is missing "
                "(engine/_durable_compat.c is compiled at install): reinstall with "
                "`pip install -e .` and a C compiler present") from exc
        finally:
            sys.setdlopenflags(flags)
    import durable_rules_engine

    return durable_rules_engine


class Rete:
    """durable_rules' engine for this process, driven from one thread."""

    def __init__(self) -> None:
        durable_rules_engine = load_durable()
        keep_session_memory()
        self._c = durable_rules_engine
        self._handles: dict[str, int] = {}
        # digest -> rule id -> (ruleset reading the signal, the signal fact encoded) for each signal it emits
        self._routes: dict[str, dict[str, list[tuple[str, str]]]] = {}
        self._busy = False
        self._runs = 0
        self._thread = threading.get_ident()

    def ensure(self, compiled: Compiled) -> None:
        """Register the compiled shards once; names carry the content hash, so edits get new names."""
        for name, definition in compiled.shards.items():
            if name not in self._handles:
                safe = {key: durable_safe(rule) for key, rule in definition.items()}
                self._handles[name] = self._c.create_ruleset(name, json.dumps(safe, ensure_ascii=False))
        if compiled.digest not in self._routes:
            self._routes[compiled.digest] = {
                rid: [(target, encode_fact(e)) for e in cr.emits for target in compiled.consumers.get(e["name"], ())]
                for rid, cr in compiled.rules.items()}

    def run(self, compiled: Compiled, facts: dict[str, dict[str, Any]], sid: str | None = None) -> DurableResult:
        """Assert one symbol's facts into a fresh session per shard, run to quiescence, read back.

        `sid` names the sessions; it only has to differ from any live one, and every fact carries
        it, so by default it is a short counter."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("durable_rules must be driven from the thread that created the engine")
        if self._busy:
            raise RuntimeError("re-entrant run: durable_rules sessions are evaluated one at a time")
        self.ensure(compiled)
        if sid is None:
            self._runs += 1
            sid = f"s{self._runs}"
        self._busy = True
        result = DurableResult()
        by_rule: dict[str, Firing] = {}
        touched: dict[str, None] = {}
        acted: set[str] = set()
        sid_json = json.dumps(sid, ensure_ascii=False)
        pending: dict[str, list[str]] = {}
        try:
            bodies: dict[str, str] = {kind: encode_fact({"kind": kind, **facts[kind]})
                                      for kind in ("stock", "sector", "commodity") if kind in facts}
            result.asserted, result.sid_head = bodies, '{"sid":' + sid_json + ","
            for shard, kinds in compiled.kinds.items():
                for kind, body in bodies.items():
                    if kind in kinds:
                        pending.setdefault(shard, []).append(body)
            self._settle(compiled, sid_json, pending, result, by_rule, touched, acted)
            for stratum, shards in compiled.phases:
                marker = f'{{"kind":"phase","n":{stratum}}}'
                for shard in shards:
                    pending.setdefault(shard, []).append(marker)
                self._settle(compiled, sid_json, pending, result, by_rule, touched, acted)
        finally:
            try:
                for shard in touched:
                    if shard not in acted:
                        handle = self._handles[shard]
                        _, state = self._c.assert_fact(handle, _with_sid('{"kind":"close__"}', sid_json))
                        if self._c.start_action_for_state(handle, state):
                            self._c.complete_and_start_action(handle, state)
            finally:
                self._busy = False
                for shard in touched:
                    self._c.delete_state(self._handles[shard], sid)
        return result

    def _settle(self, compiled: Compiled, sid_json: str, pending: dict[str, list[str]], result: DurableResult,
                by_rule: dict[str, Firing], touched: dict[str, None], acted: set[str]) -> None:
        """Assert what is pending, shard by shard, and follow the signals fired until nothing is left."""
        head = '{"sid":' + sid_json + ","
        by_key, routes = compiled.by_key, self._routes[compiled.digest]
        while pending:
            shard = next(iter(pending))
            bodies = pending.pop(shard)
            handle = self._handles[shard]
            touched[shard] = None
            texts = [head + b[1:] for b in bodies]
            try:
                if len(texts) == 1:
                    code, state = self._c.assert_fact(handle, texts[0])
                else:
                    code, state = self._c.assert_facts(handle, "[" + ",".join(texts) + "]")
            except self._c.error as exc:
                raise _refused(exc, bodies) from exc
            if code == _NOT_HANDLED and len(texts) == 1:
                continue  # no rule of this shard tests this fact's values: nothing to do
            try:
                started = self._c.start_action_for_state(handle, state)
            except self._c.error as exc:
                raise _failed(exc) from exc
            if not started:
                continue
            acted.add(shard)
            message: str | None = started[1]
            while message:
                key = message[2:message.index('"', 2)]  # `{"KEY":{...}}`: our keys are plain identifiers
                if key != CLOSE_KEY:
                    rule_id = by_key[(shard, key)]
                    previous = by_rule.get(rule_id)
                    if previous is not None:
                        previous.extra_matches += 1
                    else:
                        firing = Firing(rule_id, len(result.firings) + 1, shard, message)
                        by_rule[rule_id] = firing
                        result.firings.append(firing)
                        for target, body in routes[rule_id]:
                            pending.setdefault(target, []).append(body)
                try:
                    message = self._c.complete_and_start_action(handle, state)
                except self._c.error as exc:
                    raise _failed(exc) from exc


def _with_sid(body: str, sid_json: str) -> str:
    return f'{{"sid":{sid_json},{body[1:]}'


def _refused(exc: Exception, bodies: list[str]) -> EngineFault:
    code = _code(exc)
    kinds = sorted({json.loads(b).get("kind", "?") for b in bodies})
    return EngineFault([Problem(Location(), "engine-error",
                                f"durable_rules refused a {'/'.join(kinds)} fact (error {code}: "
                                f"{_ENGINE_ERRORS.get(code, 'unknown error')}).",
                                "Nothing was evaluated for this symbol. Run `verdict rules check` and "
                                "report the fact file if it passes.")], exit_code=3)


def _failed(exc: Exception) -> EngineFault:
    return EngineFault([Problem(Location(), "engine-error", f"durable_rules failed while firing rules: {exc}",
                                "This is a defect in verdict or its rule engine; run with --debug "
                                "and report it with the rule and fact files.")], exit_code=3)


def _code(exc: Exception) -> int:
    text = str(exc)
    digits = "".join(ch for ch in text.rsplit(":", 1)[-1] if ch.isdigit())
    return int(digits) if digits else 0


_instance: Rete | None = None


def engine() -> Rete:
    """The process-wide engine (durable_rules keeps its rulesets in global state: one per process)."""
    global _instance
    if _instance is None:
        _instance = Rete()
    return _instance
