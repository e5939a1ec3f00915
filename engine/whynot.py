"""Why this rating and not the one above or below: from a recorded output alone.

For the band one up and one down, it lists the rules whose firing (or not firing) would have moved
the score across the band edge, and what kept each from doing so: the comparison that failed and by
how much ("stock.pe_ttm 86.26 < 40 (fails by 115.7%)"), the signal present or absent, the fact missing.
Works on the stored JSON, so a months-old record is explained with the rules and bands it was rated by.
"""

from __future__ import annotations

from .expr import fmt_num
from .model import Evaluation


def _band_index(ev: Evaluation) -> int:
    names = [b.name for b in ev.rating_info.bands]
    return names.index(ev.rating) if ev.rating in names else -1


def why_not(ev: Evaluation) -> str:
    bands = ev.rating_info.bands
    i = _band_index(ev)
    lines = []
    if i < 0 or not bands:
        return "The record holds no rating bands; it predates why-not support.\n"
    if not ev.rating_info.decided_by.startswith("score"):
        how = "; ".join(ev.rating_info.steps[1:]) or ev.rating_info.decided_by
        lines.append(f"Note: the score bands alone do not decide this rating: {how}.")
    score = ev.score
    fired = {f.rule: f for f in ev.fired}
    emitted: dict[str, float] = {}
    for s in ev.signals:
        emitted[s.rule] = emitted.get(s.rule, 0.0) + s.score

    def fired_line(rule: str, delta: float) -> str:
        f = fired[rule]
        held = "; ".join(c.text for c in f.comparisons) or ", ".join(
            f"signal {u['name']} present" for u in f.signals_used) or "its condition holds"
        return f"    {delta:+g} {rule} ({f.file}:{f.line}) fired: {held}"

    def missed_line(n_rule: str) -> str:
        n = next(x for x in ev.not_fired if x.rule == n_rule)
        total = sum(float(s["score"]) for s in n.would_emit)
        why = "; ".join(n.blocked_by) or n.status
        label = "not evaluable" if n.status == "not_evaluable" else "did not fire"
        return f"    {total:+g} {n.rule} ({n.file}:{n.line}) {label}: {why}"

    def gains(sign: int) -> tuple[list[str], list[str]]:
        """Rules that would move the score in direction `sign` by firing / by not firing."""
        by_firing = sorted(n.rule for n in ev.not_fired if sign * sum(float(s["score"]) for s in n.would_emit) > 0)
        by_stopping = sorted(r for r, sc in emitted.items() if sign * -sc > 0)
        return by_firing, by_stopping

    def movers(sign: int, verb: str) -> list[str]:
        by_firing, by_stopping = gains(sign)
        out = []
        if by_firing:
            out.append(f"  would {verb} it had they fired:")
            out += [missed_line(r) for r in by_firing]
        if by_stopping:
            out.append(f"  would {verb} it had they not fired:")
            out += [fired_line(r, -emitted[r]) for r in by_stopping]
        return out or [f"  no rule of this rule book could {verb} it on these facts."]

    if i == 0:
        lines.append(f"Why {ev.rating} and not higher: {ev.rating} is the top of the scale.")
    else:
        up = bands[i - 1]
        need = (up.min_score or 0) - score
        lines.append(f"Why not {up.name} (needs score >= {fmt_num(up.min_score or 0)}; now {fmt_num(score)}, "
                     f"{fmt_num(need)} short):")
        lines += movers(+1, "raise")
    if i == len(bands) - 1:
        lines.append(f"Why {ev.rating} and not lower: {ev.rating} is the bottom of the scale.")
    else:
        down = bands[i + 1]
        edge = bands[i].min_score or 0
        lines.append(f"Why not {down.name} (needs score < {fmt_num(edge)}; now {fmt_num(score)}, "
                     f"{fmt_num(score - edge)} above the edge):")
        lines += movers(-1, "lower")
    return "\n".join(lines) + "\n"
