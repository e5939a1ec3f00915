"""The audit log's outputs: the list of records in every format, a run's heading, replay and verify
results, and a diff of two evaluations (recorded runs, or a run replayed under other rules)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..expr import fmt_num

if TYPE_CHECKING:
    from ..audit import Record, Replay, VerifyResult
    from ..checkpoint import CheckpointCheck
    from ..rundiff import RunDiff

LIST_COLUMNS = ["seq", "run_id", "created_utc", "user", "symbol", "rating", "score", "as_of", "engine_version"]
_HEADINGS = ["seq", "run id", "recorded (UTC)", "user", "symbol", "rating", "score", "as of", "engine"]


def records_output(rows: Sequence[dict[str, Any]], fmt: str) -> str:
    """`audit list`: records (their as_dict) as JSON, JSON lines, CSV, Markdown or an aligned table."""
    if fmt == "json":
        return json.dumps(list(rows), indent=2, ensure_ascii=False) + "\n"
    if fmt == "jsonl":
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    if fmt == "csv":
        buf = io.StringIO()
        w = csv.DictWriter(buf, LIST_COLUMNS, lineterminator="\n")
        w.writeheader()
        w.writerows({k: "" if r[k] is None else r[k] for k in LIST_COLUMNS} for r in rows)
        return buf.getvalue()
    body = [[str(r["seq"]), r["run_id"], r["created_utc"][:19].replace("T", " "), r["user"], r["symbol"],
             r["rating"], "-" if r["score"] is None else fmt_num(r["score"]), r["as_of"] or "-", r["engine_version"]]
            for r in rows]
    if fmt == "markdown":
        lines = ["| " + " | ".join(_HEADINGS) + " |",
                 "|" + "|".join("---:" if h in ("seq", "score") else "---" for h in _HEADINGS) + "|"]
        lines += ["| " + " | ".join(x.replace("|", "\\|") for x in c) + " |" for c in body]
        return "\n".join(lines) + "\n"
    widths = [max(len(h), *(len(c[i]) for c in body)) for i, h in enumerate(_HEADINGS)]
    right = {0, 6}
    return "".join("  ".join(x.rjust(widths[i]) if i in right else x.ljust(widths[i]) for i, x in enumerate(c))
                   .rstrip() + "\n" for c in [_HEADINGS, *body])


def run_heading(rec: Record) -> str:
    """The line above a recorded run's tree: which run, when, by whom, on which engine."""
    return f"run {rec.run_id}  seq {rec.seq}  {rec.created_utc}  by {rec.os_user}  engine {rec.engine_version}"


def replay_text(result: Replay) -> str:
    if result.identical:
        return f"identical: run {result.run_id} ({result.symbol}) replays to the same output, byte for byte.\n"
    return (f"DIFFERENT: run {result.run_id} ({result.symbol}) replays to a different output (recorded by engine "
            f"{result.recorded_engine}, replayed by engine {result.replay_engine}):\n{result.diff}\n")


def chain_text(result: VerifyResult, path: Path) -> str:
    if not result.ok:
        return f"chain BROKEN at {path}: {result.problem} The {result.records} record(s) before it verify.\n"
    return f"chain valid: {result.records} record(s) in {path}.\n"


def checkpoint_text(c: CheckpointCheck) -> str:
    cp = c.checkpoint
    if c.ok:
        return (f"checkpoint seq {cp.seq} ({cp.created_utc}, key {cp.key}, {c.where}): records 1-{cp.seq} "
                "unchanged.\n")
    return f"checkpoint seq {cp.seq} ({cp.created_utc}, {c.where}) FAILS: {c.problem}\n"


def diff_text(d: RunDiff, label_a: str, label_b: str) -> str:
    """Two evaluations side by side: A and B, then what changed in the outcome, the rules and the facts."""
    a, b = d.before, d.after
    lines = [f"A  {label_a}: {a.symbol} {a.rating} (score {fmt_num(a.score)}) as of {a.as_of}, "
             f"engine {a.engine_version}",
             f"B  {label_b}: {b.symbol} {b.rating} (score {fmt_num(b.score)}) as of {b.as_of}, "
             f"engine {b.engine_version}"]
    if a.symbol != b.symbol:
        lines.append(f"note: the runs rate different symbols ({a.symbol}, {b.symbol}).")
    if not d.changed:
        lines.append("no change in the outcome, the rules that fired or the facts read.")
    sections = [("outcome", d.outcome), ("rules that newly fire", d.newly_fired),
                ("rules that stopped firing", d.stopped_firing),
                ("facts that changed", [f.describe() for f in d.facts]), ("files that differ", d.files)]
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines += [f"  {x}" for x in items]
    return "\n".join(lines) + "\n"
