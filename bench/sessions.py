"""Experiments on durable_rules sessions: what a symbol's evaluation costs per session, and what each
way of having fewer of them gives. Not part of the test suite; figures in bench/RESULTS.md.

    python bench/sessions.py --symbols 2000 --rules 200

On bench/bench.py's seeded universe, in CPU time (medians of 3 passes, each variant in a fresh
process), every variant checked to fire the same rules as the baseline for every symbol:

- baseline: the compiled rulesets on durable's engine directly, one session per ruleset per
  symbol, deleted after it (bench/bench.py's durable direct, as engine/rete.py runs them);
- retract: one session per ruleset for the whole run, each symbol's facts (and the signals and
  phase markers it caused) retracted after it instead of the session deleted (every pass, not only
  the first, must fire as the baseline: the same facts are asserted again after their retraction);
- larger rulesets: the pipeline (`Workspace.run`) with rules packed up to 62 condition nodes per
  fact kind and ruleset instead of 56 (durable's limit is 64: engine/compile.py NODE_BUDGET),
  against the pipeline as it is.

Several symbols per session is not measured: a session's rules join every fact in it, so symbols
sharing a session would match each other's facts unless every join also tested the symbol, which
changes the compiled rules (and their node counts) rather than how they are run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from screens import run_pipeline  # noqa: E402

from bench import fresh, machine, run_durable_direct, write_universe  # noqa: E402

PASSES = 3


def run_retract(root: str, symbols: list[str]) -> dict[str, Any]:
    """As durable direct, but one session per ruleset throughout: retract what a symbol asserted."""
    from engine.pipeline import Workspace, durable_facts
    from engine.rete import keep_session_memory, load_durable

    dre = load_durable()
    ws = Workspace.open(Path(root) / "rules", Path(root) / "facts")
    comp = ws.compiled
    prepared = {s: durable_facts(ws.symbol_facts(s), comp) for s in symbols}
    keep_session_memory()
    handles = {name: dre.create_ruleset(name + "_retract", json.dumps(rules)) for name, rules in comp.shards.items()}
    emits = {rid: [json.dumps(e) for e in cr.emits] for rid, cr in comp.rules.items()}
    fired: dict[str, list[str]] = {}
    cpus, walls = [], []
    for p in range(PASSES):
        t0, c0 = time.perf_counter(), time.process_time()
        for s in symbols:
            done = _retract_one(dre, handles, comp, emits, "one", prepared[s])
            if p == 0:
                fired[s] = sorted(done)
            elif sorted(done) != fired[s]:  # facts asserted again after their retraction fire as at first
                fired[s] = ["(differs from pass 1)"]
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    for h in handles.values():
        dre.delete_state(h, "one")
    return {"cpu_s": statistics.median(cpus), "wall_s": statistics.median(walls), "fired": fired,
            "shards": len(comp.shards)}


def _retract_one(dre: Any, handles: dict[str, int], comp: Any, emits: dict[str, list[str]], sid: str,
                 facts: dict[str, dict[str, Any]]) -> set[str]:
    head = f'{{"sid":"{sid}",'
    done: set[str] = set()
    asserted: dict[str, list[str]] = {}
    pending: dict[str, list[str]] = {}
    for kind, values in facts.items():
        text = json.dumps({"kind": kind, **values})
        for shard, kinds in comp.kinds.items():
            if kind in kinds:
                pending.setdefault(shard, []).append(text)
    phases = [(f'{{"kind":"phase","n":{stratum}}}', shards) for stratum, shards in comp.phases]
    while True:
        while pending:
            shard = next(iter(pending))
            texts = list(dict.fromkeys(head + t[1:] for t in pending.pop(shard)))
            h = handles[shard]
            asserted.setdefault(shard, []).extend(texts)
            _, state = dre.assert_facts(h, "[" + ",".join(texts) + "]")
            started = dre.start_action_for_state(h, state)
            message = started[1] if started else None
            while message:
                rule_id = comp.by_key.get((shard, message[2:message.index('"', 2)]))
                if rule_id and rule_id not in done:
                    done.add(rule_id)
                    for e, text in zip(comp.rules[rule_id].emits, emits[rule_id], strict=True):
                        for target in comp.consumers.get(e["name"], []):
                            pending.setdefault(target, []).append(text)
                message = dre.complete_and_start_action(h, state)
        if not phases:
            break
        marker, shards = phases.pop(0)
        for shard in shards:
            pending.setdefault(shard, []).append(marker)
    for shard, texts in asserted.items():
        dre.retract_facts(handles[shard], "[" + ",".join(dict.fromkeys(texts)) + "]")
    return done


def load_average() -> str:
    with open("/proc/loadavg") as f:
        return ", ".join(f.read().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=2000)
    ap.add_argument("--rules", type=int, default=200)
    ap.add_argument("--seed", type=int, default=20260119)
    a = ap.parse_args()
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="verdict-sessions-") as tmp:
        write_universe(Path(tmp), a.symbols, a.rules, a.seed)
        from engine.pipeline import Workspace

        symbols = Workspace.open(Path(tmp) / "rules", Path(tmp) / "facts").symbols()
        base = fresh(run_durable_direct, tmp, symbols)
        retract = fresh(run_retract, tmp, symbols)
        pipe = fresh(run_pipeline, tmp, symbols, PASSES)
        wide = fresh(run_pipeline, tmp, symbols, PASSES, 62)
        loads.append(load_average())

    def same(x: dict[str, Any], y: dict[str, Any]) -> int:
        return sum(1 for s in symbols if x["fired"][s] == y["fired"][s])

    n = len(symbols)
    rows = [("durable direct: a session per ruleset and symbol, deleted (baseline)", base["cpu_s"],
             base["eval_s"], "", n),
            ("durable direct: one session per ruleset, each symbol's facts retracted", retract["cpu_s"],
             retract["wall_s"], f"{base['cpu_s'] / retract['cpu_s']:.2f}x", same(retract, base)),
            (f"pipeline, rulesets up to 56 nodes per fact ({pipe['shards']} rulesets)", pipe["cpu_s"], pipe["wall_s"],
             "", same(pipe, base)),
            (f"pipeline, rulesets up to 62 nodes per fact ({wide['shards']} rulesets)", wide["cpu_s"], wide["wall_s"],
             f"{pipe['cpu_s'] / wide['cpu_s']:.2f}x", same(wide, base))]
    out = [f"### Session experiments: {a.symbols:,} symbols x {a.rules} rules, "
           f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC", "",
           f"Machine: {machine()}. Load average before / after: {' | '.join(loads)}. Medians of {PASSES} passes; "
           f"`python bench/sessions.py --symbols {a.symbols} --rules {a.rules}`.", "",
           "| variant | CPU time | wall | speed-up (CPU) | same rules fired as the baseline |", "|---|---|---|---|---|"]
    out += [f"| {label} | {cpu:.2f} s | {wall:.2f} s | {gain} | {ok:,} / {n:,} |"
            for label, cpu, wall, gain, ok in rows]
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
