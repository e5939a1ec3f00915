"""`verdict rules check | test | schema | diff` run as a user runs them."""

from __future__ import annotations

import json
import shutil

import yaml
from conftest import ROOT

BAD_PACK = """\
pack: bad
evidence: valuation
rules:
  - id: bad.first
    when: stock.pe_ttm > 40
    then:
      signal: {name: lonely, score: 0}
  - id: bad.first
    when: stock.pe_ttm > 41
    then:
      signal: {name: other, score: 1}
  - id: bad.unknown-path
    when: stock.pe_tmm > 40
    then:
      signal: {name: x1, score: 1}
  - id: bad.unknown-signal
    when: signal.overbougth
    then:
      signal: {name: x2, score: 1}
  - id: bad.type
    when: stock.name > 3
    then:
      signal: {name: x3, score: 1}
  - id: bad.never
    when: stock.pe_ttm > 5 and stock.pe_ttm < 3
    then:
      signal: {name: x4, score: 1}
  - id: bad.set-buy
    when: stock.price > 1
    then:
      rating: {value: Buy}
  - id: bad.set-sell
    when: stock.price > 2
    then:
      rating: {value: Sell}
  - id: bad.template
    when: stock.price > 3
    then:
      warning: {message: "price {stock.prise}"}
  - id: bad.key
    when: stock.price > 4
    salence: 3
    then:
      signal: {name: x5, score: 1}
"""

EXPECTED = [  # (line, code, fragment)
    (5, "threshold-unexplained", "the number 40 in this rule has no reason"),
    (7, "signal-unused", "signal 'lonely' has score 0"),
    (8, "duplicate-id", "rule id 'bad.first' is already used"),
    (13, "unknown-fact", "Did you mean 'stock.pe_ttm'?"),
    (17, "unknown-signal", "Did you mean 'overbought'?"),
    (21, "type", "`stock.name` is text"),
    (25, "never-holds", "stock.pe_ttm > 5 and stock.pe_ttm < 3"),
    (25, "threshold-unexplained", "the numbers 5, 3 in this rule have no reason"),
    (29, "threshold-unexplained", "the number 1 in this rule has no reason"),
    (33, "threshold-unexplained", "the number 2 in this rule has no reason"),
    (35, "override-conflict", "contradicts 'set Buy' of bad.set-buy"),
    (39, "unknown-fact", "in the message template: unknown fact path `stock.prise`"),
    (42, "unknown-key", "unknown key 'salence'. Did you mean 'salience'?"),
]


def test_check_reports_each_mistake_at_its_line(workdir, verdict):
    (workdir / "rules" / "bad.yaml").write_text(BAD_PACK, encoding="utf-8")
    out = verdict("rules", "check", "--format", "json", cwd=workdir)
    assert out.returncode == 1, out.stderr
    found = [p for p in json.loads(out.stdout) if p["file"] == "rules/bad.yaml"]
    for line, code, fragment in EXPECTED:
        hits = [p for p in found if p["line"] == line and p["code"] == code]
        assert hits, (line, code, found)
        assert fragment in hits[0]["message"] + " " + hits[0]["hint"], hits[0]
    assert len(found) == len(EXPECTED), found
    text = verdict("rules", "check", cwd=workdir)
    assert text.returncode == 1
    assert "rules/bad.yaml:13:11: error unknown-fact: unknown fact path `stock.pe_tmm`." in text.stdout
    assert "rules/bad.yaml:7:7: warning signal-unused: signal 'lonely'" in text.stdout
    assert "8 error(s), 5 warning(s)" in text.stderr


def test_bundled_packs_check_clean(verdict):
    out = verdict("rules", "check", "--strict")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 error(s), 0 warning(s)" in out.stderr


def test_rules_test_passes_with_coverage(verdict):
    out = verdict("rules", "test", "--coverage", "--min-coverage", "90")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0 failed" in out.stdout
    total = next(line for line in out.stdout.splitlines() if line.strip().startswith("total"))
    assert float(total.split()[-1].rstrip("%")) >= 90


def test_rules_test_shows_a_readable_diff_on_failure(workdir, verdict):
    cases = workdir / "rules" / "tests" / "report.yaml"
    text = cases.read_text(encoding="utf-8").replace("rating: Hold\n      score: 5", "rating: Buy\n      score: 5", 1)
    cases.write_text(text, encoding="utf-8")
    out = verdict("rules", "test", cwd=workdir)
    assert out.returncode == 1
    assert "FAIL  rules/tests/report.yaml:" in out.stdout
    assert "rating: expected Buy, got Hold (score 5;" in out.stdout
    assert "1 failed" in out.stdout


def test_rules_test_reports_uncovered_rules(workdir, verdict):
    cases = workdir / "rules" / "tests" / "report.yaml"
    data = yaml.safe_load(cases.read_text(encoding="utf-8"))
    data["cases"] = data["cases"][:1]
    cases.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    for other in cases.parent.glob("*.yaml"):  # only that one case
        if other != cases:
            other.unlink()
    out = verdict("rules", "test", "--coverage", "--min-coverage", "90", cwd=workdir)
    assert out.returncode == 1 and "is below --min-coverage 90%" in out.stderr
    never = [line for line in out.stdout.splitlines() if "never fired:" in line]
    assert any("valuation.upside-hold" in line for line in never) and not any(
        "valuation.upside-buy" in line for line in never)


def test_schema_is_current_and_validates_every_bundled_file(tmp_path, verdict):
    import datetime as dt

    import jsonschema

    from engine.schema import kind_of

    out = verdict("rules", "schema", "--out", str(tmp_path))
    assert out.returncode == 0
    for path in sorted(tmp_path.glob("*.json")):
        committed = ROOT / "schema" / path.name
        assert committed.read_text() == path.read_text(), f"{committed} is stale: run verdict rules schema"

    def jsonable(x):  # type: ignore[no-untyped-def]
        if isinstance(x, dict):
            return {str(k): jsonable(v) for k, v in x.items()}
        if isinstance(x, list):
            return [jsonable(v) for v in x]
        return x.isoformat() if isinstance(x, dt.date) else x

    checked = 0
    for path in sorted([*ROOT.joinpath("rules").rglob("*.yaml"), *ROOT.joinpath("facts").rglob("*.yaml"),
                        *ROOT.joinpath("scenarios").rglob("*.yaml")]):
        kind = kind_of(path, ROOT)
        assert kind, path
        schema = json.loads((tmp_path / f"{kind}.schema.json").read_text())
        data = jsonable(yaml.safe_load(path.read_text(encoding="utf-8")))
        jsonschema.validate(data, schema)
        first = path.read_text(encoding="utf-8").splitlines()[0]
        assert first.startswith("# yaml-language-server: $schema=") and first.endswith(f"{kind}.schema.json")
        assert (path.parent / first.split("=", 1)[1]).resolve() == ROOT / "schema" / f"{kind}.schema.json"
        checked += 1
    assert checked >= 15
    bad = jsonable(yaml.safe_load((ROOT / "rules" / "valuation.yaml").read_text()))
    bad["rules"][0]["salence"] = 3
    schema = json.loads((tmp_path / "pack.schema.json").read_text())
    try:
        jsonschema.validate(bad, schema)
        raise AssertionError("a misspelt key must not validate")
    except jsonschema.ValidationError as e:
        assert "salence" in str(e.message)


def test_diff_shows_symbols_whose_rating_flips(tmp_path, verdict):
    old = tmp_path / "old"
    new = tmp_path / "new"
    shutil.copytree(ROOT / "rules", old)
    shutil.copytree(ROOT / "rules", new)
    pack = new / "valuation.yaml"
    pack.write_text(pack.read_text().replace("when: stock.pe_ttm > 2 * stock.earnings_growth_high_pct",
                                             "when: stock.pe_ttm > 0.5 * stock.earnings_growth_high_pct"))
    out = verdict("rules", "diff", str(old), str(new), "--format", "json")
    assert out.returncode == 0, out.stderr
    d = json.loads(out.stdout)
    assert d["rules_edited"] == ["valuation.rich-without-growth"]
    assert [s["symbol"] for s in d["symbols"]] == ["600111.SH"]
    nre = d["symbols"][0]
    assert "rating Buy -> Hold" in nre["changes"] and "score 9 -> 7" in nre["changes"]
    assert nre["newly_fired"] == ["valuation.rich-without-growth"]
    text = verdict("rules", "diff", str(old), str(new))
    assert "600111.SH Northern Rare Earth: rating Buy -> Hold" in text.stdout
    same = verdict("rules", "diff", str(old), str(old))
    assert "no symbol's outcome changes." in same.stdout
