"""Stage 4, run: the only module that imports durable_rules.

Every known quirk of durable_rules 2.0.28 is handled here and nowhere else:
- one Host per process, its two dispatch timer threads cancelled at once (they race the caller);
- rulesets registered once per content hash (durable cannot redefine a name);
- one session per evaluation, always deleted (1,024 live sessions at most, ~0.7 MB each);
- facts serialised by us: finite numbers only, no `1e-05` forms (durable rejects them);
- actions never raise into durable (it swallows exceptions silently): failures are collected
  and raised as EngineFault after the run, together with any error durable stored in the state;
- a rule fires its effects once per session, extra matches are recorded but not re-emitted;
- delete_state frees two pointers that only an action initialises: deleting a session in which
  no action ever ran frees garbage (a crash, or worse, a corrupted heap). Before deleting, every
  session that saw no action gets a `close__` fact whose no-op rule runs one.
"""

from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass, field
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


@dataclass
class Firing:
    """One rule that fired, with the facts exactly as durable matched them."""

    rule: str
    seq: int
    shard: str
    matched: dict[str, dict[str, Any]]
    extra_matches: int = 0


@dataclass
class RunResult:
    firings: list[Firing] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def fired_ids(self) -> set[str]:
        return {f.rule for f in self.firings}


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


def encode_fact(fact: dict[str, Any]) -> str:
    """JSON for one flat fact, with numbers written as durable can read them."""
    parts = []
    for k, v in fact.items():
        if v is None:
            continue
        if isinstance(v, bool):
            text = "true" if v else "false"
        elif isinstance(v, (int, float)):
            text = _number(v)
        elif isinstance(v, str):
            text = json.dumps(v, ensure_ascii=False)
        else:
            raise TypeError(f"fact field {k!r} has unsupported type {type(v).__name__}")
        parts.append(f"{json.dumps(k)}:{text}")
    return "{" + ",".join(parts) + "}"


# ----------------------------------------------------------------------------- engine


class _Context:
    def __init__(self, compiled: Compiled, sid: str) -> None:
        self.compiled = compiled
        self.sid = sid
        self.result = RunResult()
        self.by_rule: dict[str, Firing] = {}
        self.touched: dict[str, None] = {}
        self.acted: set[str] = set()


class Rete:
    """One durable_rules Host for this process, driven from one thread."""

    def __init__(self) -> None:
        from durable import engine as durable_engine

        self._durable = durable_engine
        self._host = durable_engine.Host()
        # The host's timer threads call into the same C handles as we do: stop them now.
        self._host._d_timer.cancel()
        self._host._t_timer.cancel()
        self._registered: set[str] = set()
        self._ctx: _Context | None = None
        self._thread = threading.get_ident()

    def ensure(self, compiled: Compiled) -> None:
        """Register the compiled shards once; names carry the content hash, so edits get new names."""
        if all(name in self._registered for name in compiled.shards):
            return
        todo = {name: d for name, d in compiled.definitions().items() if name not in self._registered}
        for name, rules in todo.items():
            for key, definition in rules.items():
                definition["run"] = self._action(name, key)
        self._host.set_rulesets(todo)
        self._registered.update(todo)

    def _action(self, shard: str, key: str) -> Any:
        # durable inspects __code__ and wants exactly one parameter: a closure, not a partial.
        def action(c: Any) -> None:
            ctx = self._ctx
            if ctx is None:  # pragma: no cover - only if durable dispatches outside run()
                return
            ctx.acted.add(shard)
            if key == CLOSE_KEY:
                return
            try:
                self._on_fire(ctx, shard, key, c)
            except BaseException as exc:  # durable would swallow it: keep it for the caller
                ctx.result.errors.append(f"action of {ctx.compiled.by_key.get((shard, key), key)} failed: "
                                         f"{type(exc).__name__}: {exc}")

        return action

    def _on_fire(self, ctx: _Context, shard: str, key: str, c: Any) -> None:
        rule_id = ctx.compiled.by_key[(shard, key)]
        matched = {alias: {k: v for k, v in fact.items() if k != "sid"}
                   for alias, fact in (c._m or {}).items() if isinstance(fact, dict)}
        previous = ctx.by_rule.get(rule_id)
        if previous is not None:
            previous.extra_matches += 1
            return
        firing = Firing(rule_id, len(ctx.result.firings) + 1, shard, matched)
        ctx.by_rule[rule_id] = firing
        ctx.result.firings.append(firing)
        for emit in ctx.compiled.rules[rule_id].emits:
            for target in ctx.compiled.consumers.get(emit["name"], []):
                ctx.touched[target] = None
                fact = {**emit, "sid": ctx.sid}
                try:
                    if target == shard:
                        c.assert_fact(fact)
                    else:
                        self._host.assert_fact(target, fact)
                except self._durable.MessageNotHandledException:
                    pass

    def run(self, compiled: Compiled, facts: dict[str, dict[str, Any]], sid: str) -> RunResult:
        """Assert one symbol's facts into a fresh session per shard, run to quiescence, read back."""
        if threading.get_ident() != self._thread:
            raise RuntimeError("durable_rules must be driven from the thread that created the host")
        if self._ctx is not None:
            raise RuntimeError("re-entrant run: durable_rules sessions are evaluated one at a time")
        self.ensure(compiled)
        ctx = _Context(compiled, sid)
        self._ctx = ctx
        touched = ctx.touched
        try:
            for shard, kinds in compiled.kinds.items():
                for kind in ("stock", "sector", "commodity"):
                    if kind in kinds and kind in facts:
                        touched[shard] = None
                        self._assert(shard, {"sid": sid, "kind": kind, **facts[kind]})
            for stratum, shards in compiled.phases:
                for shard in shards:
                    touched[shard] = None
                    self._assert(shard, {"sid": sid, "kind": "phase", "n": stratum})
            for shard in touched:
                state = self._host.get_state(shard, sid)
                if isinstance(state, dict) and state.get("exception"):
                    ctx.result.errors.append(f"durable_rules reported: {state['exception']}")
        finally:
            try:
                for shard in list(touched):
                    if shard not in ctx.acted:
                        self._assert(shard, {"sid": sid, "kind": "close__"})
            finally:
                self._ctx = None
                for shard in touched:
                    self._host.delete_state(shard, sid)
        if ctx.result.errors:
            raise EngineFault([Problem(Location(), "engine-fault", e,
                                       "This is a defect in verdict or its rule engine; run with --debug "
                                       "and report it with the rule and fact files.") for e in ctx.result.errors],
                              exit_code=3)
        return ctx.result

    def _assert(self, shard: str, fact: dict[str, Any]) -> None:
        import durable_rules_engine

        ruleset = self._host.get_ruleset(shard)
        text = encode_fact(fact)
        try:
            state = ruleset._handle_result(durable_rules_engine.assert_fact(ruleset._handle, text), fact)
        except self._durable.MessageNotHandledException:
            return  # no rule of this shard tests this fact's values: nothing to do
        except durable_rules_engine.error as exc:
            code = _code(exc)
            raise EngineFault([Problem(Location(), "engine-error",
                                       f"durable_rules refused a {fact.get('kind')} fact (error {code}: "
                                       f"{_ENGINE_ERRORS.get(code, 'unknown error')}).",
                                       "Nothing was evaluated for this symbol. Run `verdict rules check` and "
                                       "report the fact file if it passes.")], exit_code=3) from exc
        outcome: list[Any] = [None]

        def done(error: Any, _state: Any) -> None:
            outcome[0] = error

        ruleset.do_actions(state, done)
        if outcome[0]:
            raise EngineFault([Problem(Location(), "engine-error", f"durable_rules failed while firing rules: "
                                                                   f"{outcome[0]}")], exit_code=3)


def _code(exc: Exception) -> int:
    text = str(exc)
    digits = "".join(ch for ch in text.rsplit(":", 1)[-1] if ch.isdigit())
    return int(digits) if digits else 0


_instance: Rete | None = None


def engine() -> Rete:
    """The process-wide engine (durable_rules keeps global state per host: one per process)."""
    global _instance
    if _instance is None:
        _instance = Rete()
    return _instance
