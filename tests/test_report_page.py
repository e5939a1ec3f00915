"""The HTML report page: self-contained, escaped, deterministic, and re-made byte for byte from the audit log.

What a browser shows (rendering, clicks, console, network) is tested in test_report_browser.py.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from conftest import ROOT

from engine.report import page_data, stock_page


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text inside elements with an id."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    p = _Tags()
    p.feed(html)
    return p.tags


@pytest.fixture(scope="module")
def page_600111(ws):  # type: ignore[no-untyped-def]
    ev = ws.evaluate("600111", run_id="test-run")
    return ev, stock_page(ws, ev)


def test_page_is_self_contained_and_small(page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    assert len(html.encode("utf-8")) < 2 * 1024 * 1024
    for tag, attrs in tags(html):
        # nothing is loaded from anywhere: no external script, style, image, font or frame
        assert not (tag in ("script", "img", "iframe", "audio", "video", "source", "embed") and attrs.get("src")), tag
        assert tag != "link", attrs
    assert "@import" not in html and "url(" not in html
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    assert f"<title>{ev.name} ({ev.symbol}): Buy - verdict</title>" in html


def test_page_shows_the_rating_bands_target_and_entries(page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    assert 'id="rating">Buy<' in html
    assert ev.rating_info.meaning in html
    assert "RMB 63.54 - 72.87" in html  # the target, in the header and on the chart
    found = {(t, a.get("data-band") or a.get("data-entry") or a.get("data-level")) for t, a in tags(html)}
    assert ("g", "target") in found
    assert ("g", "medium") in found  # the only horizon with a range
    assert ("g", "support") in found and ("g", "resistance") in found
    # upside from the stated price 51.07 to each end of the target range
    assert f"{(63.54 / 51.07 - 1) * 100:+.1f}% to {(72.87 / 51.07 - 1) * 100:+.1f}%" in html
    assert "MACD(12,26,9)" in html and "KDJ(9,3,3)" in html


def test_every_fact_has_a_row_with_its_source(ws, page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    rows = re.findall(r'<tr id="fact-([^"]+)" data-path="[^"]+">(.*?)</tr>', html, re.S)
    assert [p for p, _ in rows] == [f.path for f in ev.facts]
    for path, row in rows:
        cell = re.search(r'<td class="source"><span class="src">(.*?)</span></td>', row, re.S)
        assert cell and re.sub(r"<[^>]+>", "", cell.group(1)).strip(), path
    # a source with an address is a link to it; derived facts name the price files' sources
    assert 'href="https://finance.eastmoney.com/a/202601203623713130.html"' in html
    close = dict(rows)["stock.close"]
    assert "derived from prices" in close and 'href="https://github.com/liukangdi1991/GunArk"' in close


def test_warnings_by_severity_each_linked_to_its_rule(page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    fired = {f.rule for f in ev.fired}
    section = html[html.index('<section id="warnings">'):html.index("</section>", html.index('id="warnings"'))]
    items = re.findall(r'<li data-severity="(\w+)">.*?<a class="rule-link" href="#([^"]+)">([^<]+)</a></li>',
                       section, re.S)
    assert len(items) == len(ev.warnings)
    order = ["high", "medium", "low"]
    assert [order.index(s) for s, _, _ in items] == sorted(order.index(s) for s, _, _ in items)
    ids = set(re.findall(r'id="([^"]+)"', html))
    for _, target, rule in items:
        assert target in ids, f"warning link #{target} leads nowhere"
        if rule in fired:
            assert target == f"rule-{rule}"
        else:  # facts.conflict: the fact it is about
            assert target.startswith("fact-")


def test_tree_links_rating_signals_rules_comparisons_facts(page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    tree = html[html.index('<section id="tree"'):html.index('<section id="facts"')]
    for s in ev.signals:
        assert f"<code>{s.name}</code>" in tree
    for f in ev.fired:
        assert f'id="rule-{f.rule}"' in tree, f.rule  # every fired rule has its node
    assert "stock.earnings_growth_low_pct 116.67 &gt; 100" in tree  # a comparison with its values
    assert '<li class="fact" data-path="stock.earnings_growth_low_pct">' in tree  # and the fact under it
    ids = re.findall(r'id="([^"]+)"', html)
    assert len(ids) == len(set(ids)), "duplicate ids"


def test_sensitivity_chart_lists_the_nearest_facts(ws, page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    d = page_data(ws, ev)
    assert d.flips, "600111's rating has facts near its thresholds"
    section = html[html.index('<section id="sensitivity">'):]
    assert 'id="sensitivity-chart"' in section
    nearest = min(d.flips, key=lambda f: abs(f.change_pct or 1e9))
    assert nearest.path in section
    assert "stock.price" in section  # the share price at which the rating changes


def test_page_is_deterministic_and_names_no_machine_path(ws, page_600111):  # type: ignore[no-untyped-def]
    ev, html = page_600111
    assert stock_page(ws, ev) == html
    assert str(ROOT) not in html and "/tmp" not in html


def test_window_sets_the_number_of_candles(ws):  # type: ignore[no-untyped-def]
    ev = ws.evaluate("600111", run_id="w")
    d = page_data(ws, ev, window=30)
    assert len(d.candles) == 30 and d.candles[-1].date == ev.as_of
    assert d.indicators is not None and len(d.indicators.k) == 30
    html = stock_page(ws, ev, window=30)
    assert html.count("<rect x=") > 30 and "last 30 trading days" in html


def test_chinese_names_and_fonts(page_600111):  # type: ignore[no-untyped-def]
    _, html = page_600111
    assert '<span class="alias" lang="zh-CN">北方稀土</span>' in html
    for font in ('"Noto Sans CJK SC"', '"PingFang SC"', '"Microsoft YaHei"', "sans-serif"):
        assert font in html
    assert '<meta charset="utf-8">' in html


def test_user_text_is_escaped_and_only_http_addresses_are_links(workdir: Path):
    from engine.pipeline import Workspace

    stock = workdir / "facts" / "stocks" / "600111.yaml"
    text = stock.read_text(encoding="utf-8")
    text = text.replace("name: Northern Rare Earth", 'name: "Rare <script>alert(1)</script> & \\"Co\\""')
    stock.write_text(text, encoding="utf-8")
    sources = workdir / "facts" / "sources.yaml"
    src = sources.read_text(encoding="utf-8")
    src = src.replace('url: "https://finance.eastmoney.com/a/202601203623713130.html"', 'url: "javascript:alert(2)"')
    src = src.replace("publisher: AAStocks", 'publisher: "AA<b onmouseover=x>Stocks"')
    sources.write_text(src, encoding="utf-8")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    html = stock_page(ws, ws.evaluate("600111", run_id="x"))
    assert "<script>alert(1)" not in html
    assert "Rare &lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;Co&quot;" in html
    assert "javascript:" not in html
    assert "<b onmouseover" not in html and "AA&lt;b onmouseover=x&gt;Stocks" in html
    assert len([t for t, _ in tags(html) if t == "script"]) == 1


def _runs(verdict, db: Path) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    out = verdict("audit", "list", "--format", "json", "--audit-db", str(db))
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def test_audit_report_is_byte_identical_and_keeps_the_old_rating(verdict, workdir: Path):  # type: ignore[no-untyped-def]
    db = workdir / "audit.sqlite3"
    first = workdir / "first.html"
    out = verdict("report", "600111", "--out", str(first), "--audit-db", str(db), cwd=workdir)
    assert out.returncode == 0, out.stderr
    [run] = _runs(verdict, db)
    assert run["rating"] == "Buy"
    # the rules change: a PE above half the top of the growth guidance now caps 600111 at Hold
    pack = workdir / "rules" / "valuation.yaml"
    pack.write_text(pack.read_text(encoding="utf-8").replace(
        "when: stock.pe_ttm > 2 * stock.earnings_growth_high_pct",
        "when: stock.pe_ttm > 0.5 * stock.earnings_growth_high_pct"), encoding="utf-8")
    now = workdir / "now.html"
    assert verdict("report", "600111", "--out", str(now), "--audit-db", str(db), cwd=workdir).returncode == 0
    assert 'id="rating">Hold<' in now.read_text(encoding="utf-8")
    again = workdir / "again.html"
    out = verdict("audit", "report", run["run_id"], "--out", str(again), "--audit-db", str(db), cwd=workdir)
    assert out.returncode == 0, out.stderr
    assert again.read_bytes() == first.read_bytes()
    assert 'id="rating">Buy<' in again.read_text(encoding="utf-8")


def test_report_all_writes_an_index_linking_every_page(verdict, tmp_path: Path):  # type: ignore[no-untyped-def]
    out = verdict("report", "--all", "--out", str(tmp_path / "site"), "--no-record")
    assert out.returncode == 0, out.stderr
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    links = re.findall(r'<td><a href="([^"]+)">', index)
    assert sorted(links) == ["000831.html", "300127.html", "300224.html", "300748.html", "600111.html"]
    for link in links:
        page = (tmp_path / "site" / link).read_text(encoding="utf-8")
        assert page.startswith("<!DOCTYPE html>") and 'id="price-chart"' in page
    assert 'class="sortable"' in index
    row = re.search(r'<tr data-symbol="300127.SZ">(.*?)</tr>', index, re.S)
    assert row and "Hold" in row.group(1)
    for header in ("symbol", "name", "rating", "score", "target", "upside", "first warning"):
        assert f">{header}</th>" in index


def test_report_errors_are_one_paragraph(verdict, tmp_path: Path):  # type: ignore[no-untyped-def]
    out = verdict("report", "999999", "--out", str(tmp_path / "x.html"), "--no-record")
    assert out.returncode == 2 and "Traceback" not in out.stderr and "999999" in out.stderr
    assert not (tmp_path / "x.html").exists()
    out = verdict("report", "--out", str(tmp_path / "x.html"))
    assert out.returncode == 2 and "give a SYMBOL" in out.stderr
    out = verdict("audit", "report", "nosuchrun", "--out", str(tmp_path / "y.html"), "--audit-db",
                  str(tmp_path / "none.sqlite3"))
    assert out.returncode == 2 and "Traceback" not in out.stderr


def test_a_page_replaces_the_old_file_whole(verdict, tmp_path: Path):  # type: ignore[no-untyped-def]
    target = tmp_path / "p.html"
    target.write_text("old", encoding="utf-8")
    out = verdict("report", "600111", "--out", str(target), "--no-record")
    assert out.returncode == 0, out.stderr
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["p.html"]  # no temporary file left behind


def test_report_commands_are_listed_in_help(verdict):  # type: ignore[no-untyped-def]
    assert re.search(r"\breport\b", verdict("--help").stdout)
    assert re.search(r"\breport\b", verdict("audit", "--help").stdout)


def test_audit_report_of_a_point_in_time_page(verdict, tmp_path: Path):  # type: ignore[no-untyped-def]
    db, page = tmp_path / "audit.sqlite3", tmp_path / "then.html"
    out = verdict("report", "300127", "--as-of", "2026-01-13", "--window", "60", "--out", str(page),
                  "--audit-db", str(db))
    assert out.returncode == 0, out.stderr
    [run] = _runs(verdict, db)
    html = page.read_text(encoding="utf-8")
    assert "last 60 trading days" in html and "facts as of 2026-01-13" in html
    again = tmp_path / "again.html"
    out = verdict("audit", "report", run["run_id"][:10], "--window", "60", "--out", str(again), "--audit-db", str(db))
    assert out.returncode == 0, out.stderr
    assert again.read_bytes() == page.read_bytes()


def test_a_symbol_without_prices_gets_a_page_without_chart(workdir: Path):
    from engine.pipeline import Workspace

    stock = workdir / "facts" / "stocks" / "300127.yaml"
    text = stock.read_text(encoding="utf-8")
    text = re.sub(r"\nprices:\n(?:  .*\n)+", "\n", text)
    assert "prices:" not in text
    stock.write_text(text, encoding="utf-8")
    ws = Workspace.open(workdir / "rules", workdir / "facts")
    ev = ws.evaluate("300127", run_id="np")
    html = stock_page(ws, ev)
    assert 'id="price-chart"' not in html and "No price history for this symbol" in html
    assert 'id="target">none' in html  # 300127 has no target: said, not left blank
    assert f'id="rating">{ev.rating}<' in html


COVERAGE = {"percent": 87.5, "missing": ["flows"], "needs": ["a valuation method for Buy"],
            "families": [{"family": "valuation", "label": "Valuation <&>", "scope": "stock", "rules": 4, "evaluable": 3,
                          "fired": 2, "present": True, "missing": ["stock.pe_hist_avg"]},
                         {"family": "flows", "label": "Capital flows", "scope": "stock", "rules": 2, "evaluable": 0,
                          "fired": 0, "present": False, "missing": ["stock.margin_balance_change_pct"]}]}
FRAGILITY = {"fragile": True, "notes": ["score 4 is on the Buy band's edge"], "score_edges": [],
             "facts": [{"path": "stock.earnings_growth_low_pct", "label": "Net profit growth guidance, low end",
                        "value": 116.67, "threshold": 100, "change_pct": -14.3, "rating": "Neutral",
                        "rule": "earnings.growth-doubling"}], "facts_checked": True}
VALUATIONS = [{"method": "dcf-scenarios", "title": "DCF scenarios, equal weight", "kind": "dcf", "file": "rules/x.yaml",
               "line": 3, "value": 68.2, "low": 61.38, "high": 75.02, "price": 51.07, "price_fact": "stock.price",
               "upside_pct": 33.5, "how": "mean of three <cases>", "inputs": {"stock.dcf_base": 68.2}, "used": True}]


def test_rating_quality_fields_are_rendered_when_the_evaluation_carries_them(ws):  # type: ignore[no-untyped-def]
    """Coverage, fragility, the rating's steps and valuation methods come from the rating stage; a page
    shows them when they are there, whatever model carries them, and escapes their text."""
    from pydantic import create_model

    from engine.model import Evaluation, RatingOut
    from engine.reporthtml import render_page

    rating_with_steps = create_model("RatingWithSteps", __base__=RatingOut, steps=(list[str], []))
    richer = create_model("Richer", __base__=Evaluation, coverage=(dict | None, None), fragility=(dict | None, None),
                          valuations=(list[dict], []), rating_info=(rating_with_steps, ...))
    base = ws.evaluate("600111", run_id="q").model_dump(mode="json")
    base["rating_info"]["steps"] = ["score 4 is in the Buy band (>= 4)", "no override <fired>"]
    ev = richer.model_validate({**base, "coverage": COVERAGE, "fragility": FRAGILITY, "valuations": VALUATIONS})
    html = render_page(page_data(ws, ev))
    header = html[:html.index("</header>")]
    assert "88% of the rules that read facts could be evaluated; no evidence on flows" in header
    assert "Valuation &lt;&amp;&gt;" in header and "stock.margin_balance_change_pct" in header
    assert '<span class="tag fails">fragile</span> score 4 is on the Buy band&#x27;s edge' in header
    assert 'href="#rule-earnings.growth-doubling"' in header
    assert "<li>no override &lt;fired&gt;</li>" in header
    section = html[html.index('<section id="valuations">'):]
    assert "DCF scenarios, equal weight" in section and "+33.5%" in section and "mean of three &lt;cases&gt;" in section
    plain = stock_page(ws, ws.evaluate("600111", run_id="q"))  # the rating stage's own fields
    assert 'id="coverage"' in plain and 'id="valuations"' in plain and "valuation.dcf-scenarios" in plain


def test_unknown_shapes_of_quality_fields_are_shown_as_text():
    from engine import reportquality as q

    assert q.coverage(None) == "" and q.fragility(None, set()) == "" and q.valuations(None, set()) == ""
    assert "0.8" in q.coverage(0.8) and "&lt;b&gt;" in q.fragility({"level": "<b>"}, set())


def test_outputs_in_missing_folders_are_refused_before_any_work(verdict, tmp_path: Path):  # type: ignore[no-untyped-def]
    db = tmp_path / "audit.sqlite3"
    out = verdict("report", "600111", "--out", str(tmp_path / "no" / "such" / "p.html"), "--audit-db", str(db))
    assert out.returncode == 2 and "does not exist" in out.stderr
    assert not db.exists() and not (tmp_path / "no").exists()  # nothing evaluated, recorded or created
    out = verdict("report", "--all", "--out", str(tmp_path / "no" / "site"), "--no-record")
    assert out.returncode == 2 and not (tmp_path / "no").exists()
    out = verdict("report", "--all", "--out", str(tmp_path / "site"), "--no-record")  # one level is made
    assert out.returncode == 0 and (tmp_path / "site" / "index.html").is_file()
