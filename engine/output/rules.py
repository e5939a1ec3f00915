"""The rule tools' outputs: `rules check` (one diagnostic a line and a summary, or JSON), `rules test`
(PASS/FAIL lines and coverage, or JSON) and `rules diff` (what an edit changes, per symbol)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..casetest import CaseResult, Coverage
    from ..lint import CheckReport
    from ..rulediff import RuleBookDiff


def check_json(report: CheckReport) -> str:
    return json.dumps([p.as_dict() for p in report.problems], indent=2, ensure_ascii=False) + "\n"


def check_lines(report: CheckReport) -> str:
    """One line a problem, as compilers and linters print them."""
    return "".join(p.render() + "\n" for p in report.problems)


def check_summary(report: CheckReport) -> str:
    summary = f"{report.errors} error(s), {report.warnings} warning(s)"
    if report.rules:
        summary += f" in {report.rules} rules"
    if report.rulesets:
        summary += f" ({report.rulesets} durable_rules rulesets)"
    return summary + ".\n"


def cases_json(results: Sequence[CaseResult], cov: Coverage) -> str:
    failed = sum(1 for r in results if not r.passed)
    return json.dumps({
        "cases": [{"name": r.case.name, "file": r.where.file, "line": r.where.line, "passed": r.passed,
                   "failures": r.failures, "error": r.error} for r in results],
        "passed": len(results) - failed, "failed": failed,
        "coverage": {"percent": round(cov.percent, 1), "packs": {
            p: {"fired": f, "total": t, "never_fired": n} for p, (f, t, n) in cov.per_pack.items()}},
    }, indent=2, ensure_ascii=False) + "\n"


def cases_text(results: Sequence[CaseResult], cov: Coverage, show_coverage: bool) -> str:
    """A line a case (its failures below it), the coverage per pack when asked, then the counts."""
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'}  {r.where.file}:{r.where.line}  {r.case.name}")
        lines += [f"      {line}" for line in (r.error.splitlines() if r.error else r.failures)]
    if show_coverage:
        lines += ["", "coverage (rules fired by at least one case):"]
        for pack, (f, t, never) in cov.per_pack.items():
            lines.append(f"  {pack:<16} {f:>3}/{t:<3} {100.0 * f / t:5.1f}%" + (
                f"   never fired: {', '.join(never)}" if never else ""))
        lines.append(f"  {'total':<16} {cov.fired:>3}/{cov.total:<3} {cov.percent:5.1f}%")
    failed = sum(1 for r in results if not r.passed)
    lines.append(f"{len(results) - failed} passed, {failed} failed")
    return "\n".join(lines) + "\n"


def rulediff_text(d: RuleBookDiff) -> str:
    """Rules added, removed or edited; then each symbol whose outcome or fired rules change, and how."""
    lines = [f"rules {label}: {', '.join(ids)}" for label, ids in
             (("added", d.added), ("removed", d.removed), ("edited", d.edited)) if ids]
    if not d.symbols:
        lines.append("no symbol's outcome changes.")
    for s in d.symbols:
        lines.append(f"{s.symbol} {s.name}: " + ("; ".join(s.changes) or "same outcome, other rules fire"))
        if s.newly_fired:
            lines.append(f"    now fires: {', '.join(s.newly_fired)}")
        if s.stopped_firing:
            lines.append(f"    no longer fires: {', '.join(s.stopped_firing)}")
    return "\n".join(lines) + "\n"
