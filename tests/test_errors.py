"""Bad input ends in one clear paragraph naming file, line and fix; exit code 2; no traceback."""

from __future__ import annotations

from pathlib import Path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def _fails_cleanly(out, *fragments: str) -> str:  # type: ignore[no-untyped-def]
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert "Traceback" not in out.stderr and "Traceback" not in out.stdout
    for f in fragments:
        assert f in out.stderr, (f, out.stderr)
    return out.stderr


def test_malformed_yaml_names_file_and_line(workdir, verdict):
    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "    title: Upside to the target value beyond the Buy edge\n",
          "    title: Upside to the target value beyond the Buy edge\n   bad: [unclosed\n")
    line = _line_of(pack, "bad: [unclosed")
    err = _fails_cleanly(verdict("evaluate", "600111", cwd=workdir), "rules/valuation.yaml:", "not valid YAML")
    assert f"valuation.yaml:{line}:" in err or f"valuation.yaml:{line + 1}:" in err


def test_unknown_fact_path_gets_did_you_mean(workdir, verdict):
    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "when: stock.pe_ttm < stock.earnings", "when: stock.pe_tmm < stock.earnings")
    line = _line_of(pack, "stock.pe_tmm")
    err = _fails_cleanly(verdict("evaluate", "600111", cwd=workdir),
                         f"rules/valuation.yaml:{line}:11:", "unknown fact path `stock.pe_tmm`",
                         "Did you mean 'stock.pe_ttm'?", "[valuation.pe-reasonable]")
    assert err.count("\n") == 1  # one paragraph


def test_type_mismatch_is_reported_at_its_column(workdir, verdict):
    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "when: stock.pe_ttm < stock.earnings_growth_low_pct", "when: stock.name > 3")
    line = _line_of(pack, "stock.name > 3")
    _fails_cleanly(verdict("evaluate", "600111", cwd=workdir),
                   f"rules/valuation.yaml:{line}:11:", "`>` needs numbers on both sides, but `stock.name` is text")


def test_syntax_error_in_when(workdir, verdict):
    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "when: stock.pe_ttm < stock.earnings", "when: stock.pe_ttm < < stock.earnings")
    line = _line_of(pack, "< < stock")
    _fails_cleanly(verdict("evaluate", "600111", cwd=workdir), f"rules/valuation.yaml:{line}:",
                   "invalid expression syntax")


def test_misspelt_key_gets_did_you_mean(workdir, verdict):
    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "    salience: 10\n", "    salence: 10\n")
    line = _line_of(pack, "salence: 10")
    _fails_cleanly(verdict("evaluate", "600111", cwd=workdir), f"rules/valuation.yaml:{line}:5:",
                   "unknown key 'salence'", "Did you mean 'salience'?")


def test_unknown_symbol(verdict):
    err = _fails_cleanly(verdict("evaluate", "600112"), "no facts for symbol '600112'", "Known symbols:")
    assert "600111.SH Northern Rare Earth" in err


def test_missing_facts_directory(tmp_path, verdict):
    _fails_cleanly(verdict("evaluate", "600111", "--facts", str(tmp_path / "nowhere")),
                   "does not exist", "--facts DIR")


def test_symbol_and_all_are_exclusive(verdict):
    _fails_cleanly(verdict("evaluate"), "give SYMBOL(s), --universe FILE or --all")
    _fails_cleanly(verdict("evaluate", "600111", "--all"), "give SYMBOL(s), --universe FILE or --all")


def test_bad_fact_file_names_its_line_and_affects_only_its_symbol(workdir, verdict):
    facts = workdir / "facts" / "stocks" / "300127.yaml"
    _edit(facts, "{value: 52.3, as_of: 2026-01-19, source: seed-report,",
          "{value: 52.3, as_of: 2026-01-19, source: seed-reprot,")
    line = _line_of(facts, "seed-reprot")
    _fails_cleanly(verdict("evaluate", "300127", cwd=workdir), f"facts/stocks/300127.yaml:{line}:",
                   "source 'seed-reprot' is not listed", "Did you mean 'seed-report'?")
    other = verdict("evaluate", "600111", "--no-record", cwd=workdir)
    assert other.returncode == 0 and other.stdout.startswith("Northern Rare Earth (600111.SH)")
    assert "note: 1 stock file(s) with problems were left out: facts/stocks/300127.yaml" in other.stderr


def test_fact_with_wrong_type(workdir, verdict):
    facts = workdir / "facts" / "stocks" / "300127.yaml"
    _edit(facts, "{value: 52.3,", "{value: high,")
    _fails_cleanly(verdict("evaluate", "300127", cwd=workdir), "'stock.pe_ttm' must be a number, not 'high'")


def test_debug_shows_the_traceback(verdict):
    out = verdict("--debug", "evaluate", "600112")
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_duplicate_key_in_a_stock_file_is_reported_at_its_line(workdir, verdict):
    facts = workdir / "facts" / "stocks" / "300127.yaml"
    text = facts.read_text(encoding="utf-8")
    facts.write_text(text + "  pe_ttm: {value: 1, as_of: 2026-01-19, source: seed-report}\n", encoding="utf-8")
    line = len(text.splitlines()) + 1
    _fails_cleanly(verdict("evaluate", "300127", "--no-record", cwd=workdir),
                   f"facts/stocks/300127.yaml:{line}:3:", "key 'pe_ttm' appears twice")


def test_the_command_exits_fast_but_runs_exit_handlers_and_flushes() -> None:
    import subprocess
    import sys

    script = ("import atexit, sys\n"
              "atexit.register(lambda: print('exit handler ran'))\n"
              "sys.argv = ['verdict', 'evaluate', '600111', '--no-record', '--format', 'json']\n"
              "from engine.cli import main\n"
              "main()\n"
              "print('not reached')\n")
    root = str(Path(__file__).resolve().parent.parent)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root)
    assert out.returncode == 0, out.stderr
    body, _, tail = out.stdout.rpartition("}")
    assert '"symbol": "600111.SH"' in body and tail.strip() == "exit handler ran"
    bad = subprocess.run([sys.executable, "-c", script.replace("600111", "999999")], capture_output=True,
                         text=True, timeout=120, cwd=root)
    assert bad.returncode == 2 and "no facts for symbol '999999'" in bad.stderr


def test_a_diagnostic_prints_its_stable_code_as_ruff_does(workdir, verdict):
    """`path:line:col: severity CODE: message`: the code is what the README and tools search for."""
    import re

    pack = workdir / "rules" / "valuation.yaml"
    _edit(pack, "when: stock.pe_ttm < stock.earnings", "when: stock.pe_tmm < stock.earnings")
    line = _line_of(pack, "stock.pe_tmm")
    err = _fails_cleanly(verdict("evaluate", "600111", cwd=workdir))
    assert re.match(rf"rules/valuation\.yaml:{line}:11: error unknown-fact: unknown fact path `stock\.pe_tmm`\. "
                    r"Did you mean 'stock\.pe_ttm'\? \[valuation\.pe-reasonable\]$", err.strip()), err
    usage = verdict("evaluate", "600111", "--as-of", "2026-13-45", cwd=workdir)
    assert usage.returncode == 2 and usage.stderr.startswith("error bad-date: --as-of '2026-13-45' is not a date.")


def test_the_json_of_a_diagnostic_keeps_the_input_that_failed(workdir, verdict):
    """As pydantic's errors do: the expression text of a bad condition, the value of a bad field, the key
    of an unknown one; null where no single input failed."""
    import json

    _edit(workdir / "rules" / "valuation.yaml", "when: stock.pe_ttm < stock.earnings",
          "when: stock.pe_tmm < stock.earnings")
    pack = workdir / "rules" / "extra.yaml"
    pack.write_text("pack: extra\nevidence: technical\nrules:\n  - id: extra.one\n    title: one\n"
                    "    when: stock.price > 1\n    salience: high\n    salence: 3\n"
                    "    then: {signal: {name: extra_one, score: 1}}\n", encoding="utf-8")
    out = verdict("rules", "check", "--format", "json", cwd=workdir)
    assert out.returncode == 1
    by_code = {p["code"]: p for p in json.loads(out.stdout)}
    assert by_code["unknown-fact"]["input"] == "stock.pe_tmm < stock.earnings_growth_low_pct"
    assert by_code["int-parsing"]["input"] == "high" and by_code["int-parsing"]["line"] == 7
    assert by_code["unknown-key"]["input"] == "salence"
    assert all("input" in p for p in by_code.values())


def test_a_missing_universe_file_is_one_clear_error_for_every_command_that_takes_one(verdict, tmp_path):
    missing = tmp_path / "symbols.txt"
    for args in (["evaluate", "--universe", str(missing), "--no-record"],
                 ["report", "--universe", str(missing), "--out", str(tmp_path / "pages")],
                 ["backtest", "--universe", str(missing), "--out", str(tmp_path / "bt")]):
        out = verdict(*args)
        assert out.returncode == 2 and out.stdout == "", (args, out.stderr)
        assert out.stderr.strip() == (f"{missing}: error no-universe: the universe file '{missing}' does not exist. "
                                      "Give a text file with one symbol per line."), args
    assert not (tmp_path / "pages").exists() and not (tmp_path / "bt").exists()
