"""The analyst's audit commands on runs recorded before a rule and fact edit: list, diff, replay under
other rules, export as files; and the replay of a point-in-time run and run-id lookups."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from pathlib import Path

import pytest
from conftest import FACTS, RULES

from engine.audit import AuditLog, recorded_document


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, verdict) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """300127 recorded, then its rules and facts edited and recorded again; and a point-in-time run.

    The edit raises the top of the sector-multiple valuation's PE range to 70, so Galaxy Magnetic's
    upside passes Buy's 20% (valuation.upside-hold stops firing, valuation.upside-buy fires: Hold -> Buy),
    and changes its PE fact (a new value from the same source)."""
    import shutil

    root = tmp_path_factory.mktemp("compare")
    shutil.copytree(RULES, root / "rules")
    shutil.copytree(FACTS, root / "facts")
    env = {"VERDICT_AUDIT_DB": str(root / "audit.sqlite3")}

    def record(*args: str) -> dict:  # type: ignore[type-arg]
        out = verdict("evaluate", *args, "--format", "json", cwd=root, env_extra=env)
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    before = record("300127")
    pack = root / "rules" / "valuation.yaml"
    pack.write_text(pack.read_text().replace("pe_high: sector.target_pe_high", "pe_high: 70"))
    facts = root / "facts" / "stocks" / "300127.yaml"
    text = facts.read_text()
    assert "value: 52.3" in text
    facts.write_text(text.replace("value: 52.3", "value: 53.1", 1))
    after = record("300127")
    past = record("300127", "--as-of", "2026-01-13")
    return {"root": root, "env": env, "before": before, "after": after, "past": past}


def test_the_edit_changed_the_outcome(history) -> None:  # type: ignore[no-untyped-def]
    assert history["before"]["rating"] == "Hold" and history["after"]["rating"] == "Buy"


def test_diff_of_two_runs_names_every_change_with_its_source(history, verdict) -> None:  # type: ignore[no-untyped-def]
    a, b = history["before"]["run_id"], history["after"]["run_id"]
    out = verdict("audit", "diff", a[:8], b[:8], env_extra=history["env"])
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert f"A  run {a} (seq 1" in text and f"B  run {b} (seq 2" in text
    assert "  rating Hold -> Buy" in text and "  score 5 -> 6" in text
    assert "warning gone (medium) policy.evidence: Rating moved: upside 14.0% is below Buy's 20%: Hold." in text
    assert "rules that stopped firing:\n  valuation.upside-hold\n" in text
    assert "stock.pe_ttm: 52.3 -> 53.1 x (seed report, as of 2026-01-19" in text
    assert "rules: valuation.yaml changed" in text and "facts: stocks/300127.yaml changed" in text
    assert "rules that newly fire:\n  valuation.upside-buy\n" in text
    data = json.loads(verdict("audit", "diff", a, b, "--format", "json", env_extra=history["env"]).stdout)
    assert data["changed"] and data["stopped_firing"] == ["valuation.upside-hold"]
    assert data["before"]["rating"] == "Hold" and data["after"]["rating"] == "Buy"
    (pe,) = [f for f in data["facts"] if f["path"] == "stock.pe_ttm"]
    assert pe["before"]["value"] == 52.3 and pe["after"]["value"] == 53.1 and pe["after"]["source"] == "seed report"
    assert verdict("audit", "diff", a, b, "--fail-on-change", env_extra=history["env"]).returncode == 1
    same = verdict("audit", "diff", a, a, "--fail-on-change", env_extra=history["env"])
    assert same.returncode == 0 and "no change in the outcome" in same.stdout


def test_replay_of_a_point_in_time_run_uses_its_recorded_date(history, verdict) -> None:  # type: ignore[no-untyped-def]
    run = history["past"]["run_id"]
    assert history["past"]["as_of"] == "2026-01-13"
    out = verdict("audit", "replay", run, env_extra=history["env"])
    assert out.returncode == 0 and out.stdout.startswith("identical:"), out.stdout


def test_replay_under_other_rules_uses_the_recorded_facts(history, verdict) -> None:  # type: ignore[no-untyped-def]
    """The first run's facts (PE 52.3) under the edited rules (PE range to 70): Buy, though the run said Hold.
    The recorded facts, not today's (53.1), are what is read."""
    root, env = history["root"], history["env"]
    run = history["before"]["run_id"]
    out = verdict("audit", "replay", run, "--rules", str(root / "rules"), env_extra=env)
    assert out.returncode == 0, out.stderr
    day = history["before"]["as_of"]
    head = f"run {run} (300127.SZ): its recorded facts as of {day} under the rules in {root / 'rules'}"
    assert head in out.stdout
    assert "rating Hold -> Buy" in out.stdout and "valuation.upside-hold" in out.stdout
    assert "facts that changed" not in out.stdout  # same recorded facts on both sides
    data = json.loads(verdict("audit", "replay", run, "--current-rules", "--format", "json", cwd=root,
                              env_extra=env).stdout)
    assert data["before"]["rating"] == "Hold" and data["after"]["rating"] == "Buy" and data["facts"] == []
    assert verdict("audit", "replay", run, "--current-rules", "--fail-on-change", cwd=root,
                   env_extra=env).returncode == 1
    # under its own recorded rules nothing changes
    again = verdict("audit", "replay", run, "--rules", str(RULES), "--fail-on-change", env_extra=env)
    assert again.returncode == 0 and "no change in the outcome" in again.stdout
    both = verdict("audit", "replay", run, "--rules", "x", "--current-rules", env_extra=env)
    assert both.returncode == 2 and "not both" in both.stderr


def test_export_writes_the_recorded_files_for_rules_diff(history, verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root, env = history["root"], history["env"]
    run = history["before"]["run_id"]
    to = tmp_path / "old-run"
    out = verdict("audit", "export", run, "--to", str(to), env_extra=env)
    assert out.returncode == 0, out.stderr
    for name in ("rules", "facts"):  # byte for byte the files of the run, from before the edit
        original = RULES if name == "rules" else FACTS
        exported = sorted(p.relative_to(to / name) for p in (to / name).rglob("*") if p.is_file())
        assert exported and all((to / name / p).read_bytes() == (original / p).read_bytes() for p in exported)
    assert (to / "rules" / "valuation.yaml").read_bytes() != (root / "rules" / "valuation.yaml").read_bytes()
    recorded = json.loads((to / "evaluation.json").read_text())
    assert recorded["run_id"] == run and recorded["rating"] == "Hold"
    meta = json.loads((to / "record.json").read_text())
    assert meta["run_id"] == run and meta["seq"] == 1 and "output" not in meta and meta["record_hash"]
    diff = verdict("rules", "diff", str(to / "rules"), str(root / "rules"), "--facts", str(to / "facts"))
    assert diff.returncode in (0, 1), diff.stderr
    assert "rules edited: valuation.sector-multiple" in diff.stdout and "Hold -> Buy" in diff.stdout
    again = verdict("audit", "export", run, "--to", str(to), env_extra=env)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert verdict("audit", "export", "--to", str(tmp_path / "x"), env_extra=env).returncode == 2
    (line,) = verdict("audit", "export", run, env_extra=env).stdout.splitlines()
    assert json.loads(line)["run_id"] == run


def test_list_has_a_header_a_score_and_every_format(history, verdict) -> None:  # type: ignore[no-untyped-def]
    env = history["env"]
    table = verdict("audit", "list", env_extra=env).stdout.splitlines()
    assert table[0].split() == ["seq", "run", "id", "recorded", "(UTC)", "user", "symbol", "rating", "score", "as",
                                "of", "engine"]
    assert len(table) == 4 and table[1].split()[6:8] == ["Hold", "5"] and table[3].split()[8] == "2026-01-13"
    rows = json.loads(verdict("audit", "list", "--format", "json", env_extra=env).stdout)
    day = history["before"]["as_of"]
    assert [(r["rating"], r["score"], r["as_of"]) for r in rows] == [("Hold", 5.0, day), ("Buy", 6.0, day),
                                                                     (history["past"]["rating"],
                                                                      history["past"]["score"], "2026-01-13")]
    lines = verdict("audit", "list", "--format", "jsonl", env_extra=env).stdout.splitlines()
    assert [json.loads(x) for x in lines] == rows
    parsed = list(csv.DictReader(io.StringIO(verdict("audit", "list", "--format", "csv", env_extra=env).stdout)))
    assert [(r["run_id"], float(r["score"])) for r in parsed] == [(r["run_id"], r["score"]) for r in rows]
    md = verdict("audit", "list", "--format", "markdown", env_extra=env).stdout.splitlines()
    assert md[0].startswith("| seq | run id |") and md[1].startswith("|---:|") and len(md) == 5
    assert all(line.count("|") == md[0].count("|") for line in md)
    today = rows[0]["created_utc"][:10]
    assert len(json.loads(verdict("audit", "list", "--until", today, "-f", "json", env_extra=env).stdout)) == 3
    assert json.loads(verdict("audit", "list", "--until", "2020-01-01", "-f", "json", env_extra=env).stdout) == []
    bad = verdict("audit", "list", "--until", "tomorrow", env_extra=env)
    assert bad.returncode == 2 and "--until 'tomorrow' is not a date" in bad.stderr


def test_why_answers_why_not_first_then_the_tree(history, verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("why", history["before"]["run_id"], env_extra=history["env"]).stdout
    assert out.index("Why not Buy") < out.index("<- valuation.upside-hold")


def test_run_ids_are_matched_literally(tmp_path: Path, ws, verdict) -> None:  # type: ignore[no-untyped-def]
    db = tmp_path / "audit.sqlite3"
    log = AuditLog(db)
    ev = ws.evaluate("600111")
    for run_id in ("abcdef01", "abcdef02", "a_c%ef03"):
        log.append(run_id=run_id, symbol=ev.symbol, rating=ev.rating, output=ev.model_copy(
            update={"run_id": run_id}).model_dump_json(), engine_version=ev.engine_version,
            rules_files=ws.book.files, facts_files=ws.facts.files)
    log.close()
    env = {"VERDICT_AUDIT_DB": str(db)}
    for pattern in ("______", "%%%%%%", "abc%", "a_cdef"):
        out = verdict("audit", "show", pattern, env_extra=env)
        assert out.returncode == 2 and f"run id '{pattern}' is not in the audit log" in out.stderr, pattern
    amb = verdict("audit", "show", "abcdef", env_extra=env)
    assert amb.returncode == 2 and "prefix 'abcdef' is ambiguous: it starts abcdef01..., abcdef02..." in amb.stderr
    assert verdict("audit", "show", "a_c%ef", env_extra=env).returncode == 0  # a literal match still works
    assert verdict("audit", "show", "abcdef02", env_extra=env).returncode == 0


def test_records_from_before_packing_and_newer_fields_still_list_show_and_diff(history, verdict, tmp_path: Path
                                                                                ) -> None:  # type: ignore[no-untyped-def]
    """A log written before outputs were packed (text) and before `fact_checks` existed still reads."""
    import shutil

    db = tmp_path / "old.sqlite3"
    shutil.copy(Path(history["env"]["VERDICT_AUDIT_DB"]), db)
    log = AuditLog(db)  # records hold traces now; before, they held the rendered evaluation
    rendered = {rec.seq: recorded_document(rec) for rec in log.list()}
    log.close()
    con = sqlite3.connect(db)
    for seq, _ in con.execute("SELECT seq, output FROM runs").fetchall():
        out = json.loads(rendered[seq])
        out.pop("fact_checks", None)
        text = json.dumps(out, separators=(",", ":"))
        con.execute("UPDATE runs SET output = ? WHERE seq = ?", (text, seq))
    con.commit()
    con.close()
    env = {"VERDICT_AUDIT_DB": str(db)}
    rows = json.loads(verdict("audit", "list", "--format", "json", env_extra=env).stdout)
    assert [r["score"] for r in rows][:2] == [5.0, 6.0]
    a, b = rows[0]["run_id"], rows[1]["run_id"]
    assert verdict("audit", "show", a, env_extra=env).returncode == 0
    assert "rating Hold -> Buy" in verdict("audit", "diff", a, b, env_extra=env).stdout


def test_replays_leave_no_cache_files(history, verdict, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Row 11: a replay parses the recorded files afresh and writes no parse cache for its scratch folder."""
    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    env = {**history["env"], "VERDICT_CACHE_DIR": str(cache)}
    run = history["before"]["run_id"]
    assert verdict("audit", "replay", run, env_extra=env).returncode == 0
    assert verdict("audit", "replay", run, "--rules", str(RULES), env_extra=env).returncode == 0
    assert list(cache.iterdir()) == []
    assert verdict("evaluate", "600111", "--no-record", env_extra=env).returncode == 0
    assert any(p.name.startswith("facts-") for p in cache.iterdir())  # the same setting does cache evaluations
