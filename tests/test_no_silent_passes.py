"""Answers that used to be silently wrong now fail or warn: each case an analyst met, with its test."""

from __future__ import annotations

import json
import re
from pathlib import Path

STOCK = Path("facts") / "stocks" / "600111.yaml"


def _state_price(workdir: Path, price: str) -> None:
    path = workdir / STOCK
    text = path.read_text(encoding="utf-8")
    assert "{value: 51.07, unit: RMB" in text
    path.write_text(text.replace("{value: 51.07, unit: RMB", "{value: " + price + ", unit: RMB"), encoding="utf-8")


def test_a_stated_price_the_history_contradicts_warns_in_every_view(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _state_price(workdir, "20.15")
    table = verdict("evaluate", "600111", "--no-record", cwd=workdir)
    assert table.returncode == 0, table.stderr
    assert "facts.check" in table.stdout and "disagrees with the close of 2026-01-19" in table.stdout
    doc = json.loads(verdict("evaluate", "600111", "--no-record", "--format", "json", cwd=workdir).stdout)
    (warning,) = [w for w in doc["warnings"] if w["rule"] == "facts.check"]
    assert warning["severity"] == "high" and "20.15" in warning["message"] and "51.07" in warning["message"]
    assert "by 60.5%" in warning["message"]
    markdown = verdict("evaluate", "600111", "--no-record", "--format", "markdown", cwd=workdir).stdout
    assert "disagrees with the close of 2026-01-19" in markdown and "(`facts.check`)" in markdown
    screen = verdict("evaluate", "--all", "--no-record", "--format", "jsonl", cwd=workdir)
    assert screen.returncode == 0, screen.stderr
    row = next(json.loads(line) for line in screen.stdout.splitlines() if '"600111.SH"' in line)
    assert [w for w in row["warnings"] if w["rule"] == "facts.check"]
    rows = verdict("evaluate", "--all", "--no-record", "--format", "csv", "--columns", "rating,warning_rule,warning",
                   cwd=workdir)
    row = next(line for line in rows.stdout.splitlines() if line.startswith("600111.SH"))
    assert row.startswith('600111.SH,Buy,facts.check,"The stated price 20.15')  # the first, most severe warning
    tree = verdict("evaluate", "600111", "--no-record", "--explain", cwd=workdir).stdout
    assert "DISAGREE stock.price" in tree and "[high] The stated price" in tree


def test_a_price_within_the_policy_tolerance_does_not_warn(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _state_price(workdir, "51.5")  # 0.8% from the close, inside the policy's 2%
    doc = json.loads(verdict("evaluate", "600111", "--no-record", "--format", "json", cwd=workdir).stdout)
    assert not [w for w in doc["warnings"] if w["rule"] == "facts.check"]
    assert next(c for c in doc["fact_checks"] if c["path"] == "stock.price")["agree"]


def test_overriding_the_price_clears_the_warning_about_it(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _state_price(workdir, "20.15")
    out = verdict("what-if", "600111", "--set", "stock.price=51.07", "--format", "json", cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert "warning from facts.check gone" in " ".join(json.loads(out.stdout)["changes"])


def _edit_cases(workdir: Path, *pairs: tuple[str, str]) -> None:
    path = workdir / "rules" / "tests" / "report.yaml"
    text = path.read_text(encoding="utf-8")
    for old, new in pairs:
        assert old in text, old
        text = text.replace(old, new, 1)
    path.write_text(text, encoding="utf-8")


def _where(workdir: Path, text: str, offset: int = 0) -> str:
    """file:line:col of `text` (plus `offset` columns) in the edited case file, as problems name it."""
    lines = (workdir / "rules" / "tests" / "report.yaml").read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines) if text in line)
    return f"rules/tests/report.yaml:{n + 1}:{lines[n].index(text) + offset + 1}"


def test_rule_tests_naming_unknown_rules_signals_or_warnings_fail_with_a_did_you_mean(workdir: Path,
                                                                                      verdict) -> None:  # type: ignore[no-untyped-def]
    _edit_cases(workdir,
                ("not_fired: [technical.range-bound,", "not_fired: [technical.range-bond,"),
                ("no_signals: [earnings_growth_strong]", "no_signals: [earnings_growth_strong, uptrnd]"),
                ("signals: [upside_large, earnings_growth_possible, margin_inflow, overbought]",
                 "signals: [upside_large, earnings_growth_possible, margin_inflow, overbought]\n"
                 "      fired: [analyst.uptrnd]"),
                ("no_warnings: [valuation.above-target,", "no_warnings: [valuation.above-targt,"),
                ("      warnings: [valuation.rich-without-growth]", "      warnings: [valuation.pe-reasonable]"))
    out = verdict("rules", "test", cwd=workdir)
    assert out.returncode == 1
    lines = out.stdout.splitlines()
    assert any(line.startswith("FAIL") and "Zhenghai Magnetic is a Buy" in line for line in lines)
    prefix = "not_fired: ["
    where = _where(workdir, prefix + "technical.range-bond", len(prefix))
    assert f"{where}: error unknown-rule: expect.not_fired: rule 'technical.range-bond' does not exist" in out.stdout
    assert "Did you mean 'technical.range-bound'?" in out.stdout
    assert "expect.no_signals: no rule emits a signal 'uptrnd'" in out.stdout
    assert "expect.fired: rule 'analyst.uptrnd' does not exist" in out.stdout
    assert "expected to fire, did not" not in out.stdout  # the case is not run on a name that means nothing
    assert "expect.no_warnings: no rule or engine check 'valuation.above-targt' raises warnings. Did you " \
           "mean 'valuation.above-target'?" in out.stdout
    assert "expect.warnings: rule 'valuation.pe-reasonable' raises no warning" in out.stdout
    assert "5 failed" in out.stdout
    check = verdict("rules", "check", cwd=workdir)
    assert check.returncode == 1
    problems = [line for line in check.stdout.splitlines() if "rules/tests/report.yaml:" in line]
    codes = r": error (unknown-rule|unknown-signal|never-warns): expect\."
    assert len(problems) == 5 and all(re.search(codes, line) for line in problems)
    assert "5 error(s)" in check.stderr


def test_rules_check_reads_the_test_files_schema_too(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _edit_cases(workdir, ("      rating: Neutral\n      target: {value: 68.21",
                          "      ratng: Neutral\n      target: {value: 68.21"),
                ('    symbol: "300127"\n', '    symbol: "300128"\n'))
    out = verdict("rules", "check", cwd=workdir)
    assert out.returncode == 1
    assert f"{_where(workdir, 'ratng')}: error unknown-key: unknown key 'ratng'. Did you mean 'rating'?" in out.stdout
    assert f"{_where(workdir, '300128', -1)}: error " in out.stdout and "300128" in out.stdout


def test_a_failing_score_expectation_lists_the_signals_behind_it(workdir: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    _edit_cases(workdir, ("      rating: Hold\n      score: 5", "      rating: Hold\n      score: 6"))
    out = verdict("rules", "test", cwd=workdir)
    assert out.returncode == 1
    assert "score: expected 6, got 5 (-1)" in out.stdout
    assert "+1 margin_inflow (capital_flow.stock-margin-inflow)" in out.stdout
    assert "-1 overbought (technical.kdj-overbought)" in out.stdout
    assert "would make up: +1 from valuation.pe-reasonable (rules/valuation.yaml:" in out.stdout
    assert "stock.pe_ttm < stock.earnings_growth_low_pct: missing stock.earnings_growth_low_pct" in out.stdout
    assert "would make up: +1 had technical.kdj-overbought not fired (it emitted -1)" in out.stdout


def test_rules_diff_can_fail_on_any_change(tmp_path: Path, verdict) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from conftest import RULES

    old, new = tmp_path / "old", tmp_path / "new"
    shutil.copytree(RULES, old)
    shutil.copytree(RULES, new)
    same = verdict("rules", "diff", str(old), str(new), "--fail-on-change")
    assert same.returncode == 0 and "no symbol's outcome changes." in same.stdout
    policy = new / "policy.yaml"
    policy.write_text(policy.read_text().replace("      min_upside_pct: 20\n", "      min_upside_pct: 10\n"))
    assert verdict("rules", "diff", str(old), str(new)).returncode == 0  # a report, unless asked to gate
    gated = verdict("rules", "diff", str(old), str(new), "--fail-on-change")
    assert gated.returncode == 1 and "300127.SZ Galaxy Magnetic: rating Hold -> Buy" in gated.stdout
    assert "1 symbol(s) change (--fail-on-change)." in gated.stderr
    as_json = verdict("rules", "diff", str(old), str(new), "--fail-on-change", "--format", "json")
    assert as_json.returncode == 1 and json.loads(as_json.stdout)["changed"] is True
    # a reworded warning alone is a change
    shutil.rmtree(new)
    shutil.copytree(RULES, new)
    risk = new / "risk.yaml"
    text = risk.read_text()
    assert "Profit-taking pressure" in text
    risk.write_text(text.replace("Profit-taking pressure", "Profit taking pressure"))
    worded = verdict("rules", "diff", str(old), str(new), "--fail-on-change")
    assert worded.returncode == 1 and "warning from risk.stock-rally-extended changed: 'Profit-taking" in worded.stdout


def test_the_same_path_set_twice_is_an_error(verdict) -> None:  # type: ignore[no-untyped-def]
    out = verdict("what-if", "600111", "--set", "stock.pe_ttm=200", "--set", "stock.pe_ttm=30")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--set stock.pe_ttm is given twice ('stock.pe_ttm=200' and 'stock.pe_ttm=30')" in out.stderr
