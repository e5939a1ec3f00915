"""Every command run in-process with typer's CliRunner, beside the subprocess tests of the real console
script: the same app, its output and exit codes, checked against what the library gives.

Bad input is handled by the app itself (one paragraph per problem on stderr, exit 2), so a CliRunner sees
what a user sees. `test_every_command_has_an_in_process_test` keeps this file complete.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from conftest import FACTS, ROOT, RULES
from typer.main import get_command
from typer.testing import CliRunner, Result

from engine.cli import app

COVERED = {
    "evaluate", "backtest", "what-if", "sensitivity", "report", "why",
    "rules check", "rules test", "rules schema", "rules diff",
    "audit list", "audit show", "audit replay", "audit diff", "audit report", "audit verify", "audit keygen",
    "audit checkpoint", "audit export",
    "data import", "data pull",
}


def _commands(group: typer.Typer) -> Iterator[tuple[str, ...]]:
    def walk(cmd: object, path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
        sub = getattr(cmd, "commands", None)
        if sub is None:
            yield path
            return
        for name, child in sub.items():
            yield from walk(child, (*path, name))

    yield from walk(get_command(group), ())


def test_every_command_has_an_in_process_test() -> None:
    assert {" ".join(p) for p in _commands(app)} == COVERED


@pytest.mark.parametrize("path", sorted(COVERED))
def test_every_command_has_help_with_an_example(path: str) -> None:
    out = CliRunner().invoke(app, [*path.split(), "--help"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    lines = [line.strip() for line in out.output.splitlines()]
    assert "Examples:" in lines
    assert any(line.startswith(f"$ verdict {path} ") or line == f"$ verdict {path}" for line in lines), out.output


@pytest.fixture()
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of rules/ and facts/ as the current directory, with its own audit log and signing key."""
    shutil.copytree(RULES, tmp_path / "rules")
    shutil.copytree(FACTS, tmp_path / "facts")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VERDICT_AUDIT_DB", str(tmp_path / "audit.sqlite3"))
    monkeypatch.setenv("VERDICT_AUDIT_KEY", str(tmp_path / "keys" / "audit.key"))
    monkeypatch.setenv("VERDICT_AUDIT_PUBKEY", str(tmp_path / "keys" / "audit.pub"))
    monkeypatch.setenv("COLUMNS", "160")
    return tmp_path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def recorded(*symbols: str) -> list[str]:
    """Evaluate and record; the run ids, oldest first."""
    out = run("evaluate", *symbols, "--format", "jsonl")
    assert out.exit_code == 0, out.output
    return [json.loads(line)["run_id"] for line in out.stdout.splitlines()]


# ------------------------------------------------------------------------------ the workbench


def test_evaluate(here: Path) -> None:
    from engine import Workspace, render_table

    out = run("evaluate", "600111", "--format", "json", "--no-record")
    assert out.exit_code == 0
    got = json.loads(out.stdout)
    ev = Workspace.open("rules", "facts").evaluate("600111")
    assert {**got, "run_id": ""} == {**ev.model_dump(mode="json"), "run_id": ""}
    assert run("evaluate", "600111", "--no-record").stdout == render_table(ev, 160) + "\n"
    bad = run("evaluate", "600112", "--no-record")
    assert bad.exit_code == 2 and bad.stderr.startswith("facts: error") and "Did you mean '600111'?" in bad.stderr
    screen = run("evaluate", "--all", "--where", 'rating == "Buy"', "--columns", "rating,score", "--format", "csv",
                 "--no-record")
    rows = list(csv.DictReader(io.StringIO(screen.stdout)))
    assert screen.exit_code == 0 and rows and all(r["rating"] == "Buy" for r in rows)


def test_backtest(here: Path) -> None:
    out = run("backtest", "600111", "--from", "2025-10-09", "--to", "2026-01-20", "--every", "20", "--horizons",
              "20", "--out", "bt", "--no-charts", "--format", "json")
    assert out.exit_code == 0, out.stderr
    data = json.loads(out.stdout)
    assert data == json.loads((here / "bt" / "backtest.json").read_text(encoding="utf-8"))
    assert data["universe"]["symbols"] == 1 and data["universe"]["horizons"] == [20]
    assert (here / "bt" / "ratings.csv").is_file() and (here / "bt" / "backtest_600111.json").is_file()


def test_what_if(here: Path) -> None:
    out = run("what-if", "600111", "--set", "stock.pe_ttm=40", "--format", "json")
    assert out.exit_code == 0
    data = json.loads(out.stdout)
    assert data["overrides"] == {"stock.pe_ttm": 40} and data["scenario"]["rating"] in ("Buy", "Hold", "Neutral",
                                                                                        "Sell")
    grid = run("what-if", "600111", "--grid", "stock.pe_ttm=30:90:30", "--format", "csv")
    assert grid.exit_code == 0 and grid.stdout.splitlines()[0] == "stock.pe_ttm,rating,score"
    assert len(grid.stdout.splitlines()) == 4


def test_sensitivity(here: Path) -> None:
    from engine import Workspace, sensitivity

    out = run("sensitivity", "600111", "--format", "json")
    assert out.exit_code == 0
    assert json.loads(out.stdout) == json.loads(json.dumps(sensitivity(Workspace.open("rules", "facts"),
                                                                       "600111").as_dict()))
    text = run("sensitivity", "600111", "--price")
    assert text.exit_code == 0 and text.stdout.startswith("600111.SH Northern Rare Earth: ")


def test_report(here: Path) -> None:
    out = run("report", "600111", "--out", "p.html", "--no-record")
    assert out.exit_code == 0 and out.stdout.startswith("p.html  (600111.SH ")
    assert (here / "p.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_why(here: Path) -> None:
    [run_id] = recorded("300127")
    out = run("why", "300127")
    assert out.exit_code == 0 and out.stdout.startswith(f"run {run_id}  recorded ")
    assert "300127.SZ Galaxy Magnetic: Hold" in out.stdout


# ------------------------------------------------------------------------------ rules


def test_rules_check(here: Path) -> None:
    from engine import check

    out = run("rules", "check", "--format", "json")
    assert out.exit_code == 0 and json.loads(out.stdout) == [p.as_dict() for p in check("rules", "facts").problems]
    (here / "rules" / "valuation.yaml").write_text(
        (here / "rules" / "valuation.yaml").read_text(encoding="utf-8").replace("stock.pe_ttm", "stock.pe_tmm", 1),
        encoding="utf-8")
    bad = run("rules", "check")
    assert bad.exit_code == 1 and "unknown fact path `stock.pe_tmm`" in bad.stdout


def test_rules_test(here: Path) -> None:
    out = run("rules", "test", "--coverage")
    assert out.exit_code == 0 and out.stdout.splitlines()[-1].endswith("passed, 0 failed")
    assert "coverage (rules fired by at least one case):" in out.stdout


def test_rules_schema(here: Path) -> None:
    out = run("rules", "schema", "--out", "s")
    assert out.exit_code == 0
    written = sorted(p.name for p in (here / "s").iterdir())
    assert written == sorted(p.name for p in (ROOT / "schema").glob("*.schema.json"))
    for name in written:
        assert (here / "s" / name).read_text(encoding="utf-8") == (ROOT / "schema" / name).read_text(encoding="utf-8")


def test_rules_diff(here: Path) -> None:
    shutil.copytree(here / "rules", here / "new")
    (here / "new" / "extra.yaml").write_text(
        "pack: extra\nrules:\n  - id: extra.close-known\n    title: a price history lowers every score\n"
        "    when: stock.close > 0\n    then:\n      signal: {name: close_known, score: -20}\n", encoding="utf-8")
    same = run("rules", "diff", "rules", "rules")
    assert same.exit_code == 0 and "no symbol's outcome changes." in same.stdout
    out = run("rules", "diff", "rules", "new", "--format", "json", "--fail-on-change")
    changed = json.loads(out.stdout)
    assert out.exit_code == 1 and changed["rules_added"] == ["extra.close-known"]
    assert {s["symbol"] for s in changed["symbols"]} == {"600111.SH", "000831.SZ", "300748.SZ", "300224.SZ",
                                                           "300127.SZ"}


# ------------------------------------------------------------------------------ the audit log


def test_audit_list(here: Path) -> None:
    ids = recorded("600111", "300127")
    out = run("audit", "list", "--format", "json")
    assert out.exit_code == 0 and [r["run_id"] for r in json.loads(out.stdout)] == ids
    assert f"{len(ids)} record(s) in " in out.stderr


def test_audit_show(here: Path) -> None:
    from engine import AuditLog, render_tree
    from engine.audit import recorded_evaluation

    [run_id] = recorded("600111")
    out = run("audit", "show", run_id)
    log = AuditLog(readonly=True)
    assert out.exit_code == 0 and out.stdout.endswith(render_tree(recorded_evaluation(log.get(run_id))) + "\n")


def test_audit_replay(here: Path) -> None:
    [run_id] = recorded("600111")
    out = run("audit", "replay", run_id[:8])
    assert out.exit_code == 0 and out.stdout.startswith(f"identical: run {run_id} (600111.SH)")


def test_audit_diff(here: Path) -> None:
    a, b = recorded("300127", "300127")
    out = run("audit", "diff", a, b, "--format", "json", "--fail-on-change")
    assert out.exit_code == 0 and json.loads(out.stdout)["changed"] is False


def test_audit_report(here: Path) -> None:
    out = run("report", "600111", "--out", "now.html")
    run_id = out.stdout.split("run ")[1].rstrip(")\n")
    again = run("audit", "report", run_id, "--out", "again.html")
    assert again.exit_code == 0
    assert (here / "again.html").read_bytes() == (here / "now.html").read_bytes()


def test_audit_verify(here: Path) -> None:
    recorded("600111", "000831")
    out = run("audit", "verify")
    assert out.exit_code == 0 and out.stdout.startswith("chain valid: 2 record(s) in ")


def test_audit_keygen(here: Path) -> None:
    pytest.importorskip("cryptography")
    out = run("audit", "keygen")
    assert out.exit_code == 0 and (here / "keys" / "audit.key").is_file()
    assert (here / "keys" / "audit.pub").is_file()
    again = run("audit", "keygen")
    assert again.exit_code == 2  # a key is never overwritten


def test_audit_checkpoint(here: Path) -> None:
    pytest.importorskip("cryptography")
    recorded("600111")
    assert run("audit", "keygen").exit_code == 0
    out = run("audit", "checkpoint", "--out", "cp.txt")
    assert out.exit_code == 0 and (here / "cp.txt").read_text(encoding="utf-8").strip() == out.stdout.strip()
    checked = run("audit", "verify", "--checkpoint-file", "cp.txt")
    assert checked.exit_code == 0 and "records 1-1 unchanged" in checked.stdout


def test_audit_export(here: Path) -> None:
    [run_id] = recorded("300127")
    lines = run("audit", "export", "--symbol", "300127").stdout.splitlines()
    assert [json.loads(line)["run_id"] for line in lines] == [run_id]
    out = run("audit", "export", run_id, "--to", "old")
    assert out.exit_code == 0
    assert (here / "old" / "rules" / "valuation.yaml").read_bytes() == (here / "rules" / "valuation.yaml").read_bytes()
    assert json.loads((here / "old" / "evaluation.json").read_text(encoding="utf-8"))["run_id"] == run_id


# ------------------------------------------------------------------------------ market data


def test_data_import(here: Path) -> None:
    bars = here / "bars"
    bars.mkdir()
    (bars / "601398.csv").write_text("date,open,high,low,close,volume\n2025-09-01,7.10,7.21,7.05,7.18,2301455\n"
                                     "2025-09-02,7.18,7.25,7.12,7.20,1987342\n", encoding="utf-8")
    out = run("data", "import", "bars", "--facts", "facts", "--format", "json")
    assert out.exit_code == 0, out.output
    summary = json.loads(out.stdout)
    assert (here / "facts" / "stocks" / "601398.yaml").is_file() and summary["files"] == 1
    again = run("data", "import", "bars", "--facts", "facts", "--format", "json")  # without a names list, twice
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["unchanged"] == 1 and json.loads(again.stdout)["new"] == 0


def test_data_pull(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No network in tests: without akshare the command says how to install it; with it, a code that is
    no A-share code is refused before anything is fetched."""
    bad = run("data", "pull", "600111", "--from", "2025-13-01")
    assert bad.exit_code == 2 and "--from '2025-13-01' is not a date" in bad.stderr
    import importlib.util

    out = run("data", "pull", "600111", "--facts", "facts")
    if importlib.util.find_spec("akshare") is None:
        assert out.exit_code == 2 and "akshare" in out.stderr


# ------------------------------------------------------------------------------ conventions


def test_version_is_the_one_audit_records_carry(here: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    recorded("600111")
    carried = {r["engine_version"] for r in json.loads(run("audit", "list", "--format", "json").stdout)}
    out = verdict("--version", cwd=here)
    assert out.returncode == 0 and out.stdout == f"verdict {carried.pop()}\n" and not carried
    assert run("--version").stdout == out.stdout


def test_shell_completion_of_commands_and_symbols(here: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    script = verdict("--show-completion", "bash", cwd=here)
    assert script.returncode == 0 and "_VERDICT_COMPLETE=complete_bash" in script.stdout

    def complete(words: str) -> list[str]:
        env = {"_VERDICT_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1)}
        return verdict(cwd=here, env_extra=env).stdout.split()

    assert complete("verdict audit re") == ["replay", "report"]
    assert complete("verdict evaluate 30") == ["300127", "300224", "300748"]
    shutil.copy(here / "facts" / "stocks" / "600111.yaml", here / "facts" / "stocks" / "600999.yaml")
    assert complete("verdict report --facts facts 60") == ["600111", "600999"]
