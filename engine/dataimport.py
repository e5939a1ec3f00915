"""`verdict data import`: a folder of per-symbol daily-bar files -> stocks of a facts directory.

What it writes, all inside FACTS_DIR so the directory stays self-contained (and audit snapshots whole):
- prices/<source>/<code>.csv: the bars, normalised (ascending ISO dates, date,open,high,low,close,
  volume,amount; volume in lots, amount in RMB thousands);
- stocks/<code>.yaml: generated stock files (header from the names list, the price segment, the gaps
  recorded as suspensions), marked with a hash of their content. A file without the mark, or edited
  since it was generated, belongs to the user and is never rewritten: its price file is still updated
  where it already names one, and the summary says what to add to it otherwise;
- sources.yaml: the source entry, added once; sectors/<id>.yaml for sectors new to the directory;
  sector_map.yaml: the names list's industries -> sectors, which the user may edit;
- prices/<source>/.import.json: what each source file's bytes gave, so an unchanged re-import
  parses nothing.

Files are written whole or not at all (engine/fsutil.py), each only if its bytes change, sources and
sectors before the stocks that name them and a stock's bars before its stock file: an import killed
at any moment leaves a loadable directory, and running it again completes it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .barformats import BY_NAME, BarFile, Row, read_bars, symbol_of
from .calendar import TradingCalendar, exchange_calendar
from .errors import FactError, LookupFailure, Problem, problem
from .fsutil import write_if_changed

MARK = "# verdict-import: "
SCHEMA_LINE = "# yaml-language-server: $schema=../../schema/{kind}.schema.json\n"
SECTOR_MAP = "sector_map.yaml"
MANIFEST = ".import.json"
UNCLASSIFIED = "unclassified"
OVERLAP_TOLERANCE = 0.0051  # as prices.py: two roundings to 0.01 may differ by one tick
MANIFEST_FORMAT = 1
PUBLISHERS = {"tushare daily_basic": "Tushare (daily_basic export)", "akshare": "akshare (Eastmoney)"}


# ----------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Listing:
    """One row of a names list (Tushare stock_basic)."""

    name: str
    industry: str
    list_date: dt.date | None = None


def read_names(path: Path) -> dict[str, Listing]:
    """code -> listing, from a Tushare `stock_basic` export (ts_code or symbol, name, industry[, list_date])."""
    text = path.read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    if not rows:
        raise LookupFailure([problem(str(path), 1, 1, "names-empty", "the names list is empty.", "")])
    head = [h.strip().lower() for h in rows[0]]

    def col(*names: str) -> int | None:
        return next((head.index(n) for n in names if n in head), None)

    i_code, i_name, i_ind, i_list = col("ts_code", "symbol", "code", "代码"), col("name", "名称"), \
        col("industry", "行业"), col("list_date", "上市日期")
    if i_code is None or i_name is None:
        raise LookupFailure([problem(str(path), 1, 1, "names-columns", "the names list needs a code column "
                                     "(ts_code or symbol) and a name column.",
                                     "Export Tushare stock_basic with ts_code, symbol, name, industry.")])
    out: dict[str, Listing] = {}
    for row in rows[1:]:
        if len(row) <= max(i_code, i_name):
            continue
        code = row[i_code].strip().partition(".")[0][-6:]
        if not (len(code) == 6 and code.isdigit()):
            continue
        listed = None
        if i_list is not None and i_list < len(row) and row[i_list].strip():
            try:
                from .barformats import parse_date

                listed = parse_date(row[i_list])
            except ValueError:
                listed = None
        industry = row[i_ind].strip() if i_ind is not None and i_ind < len(row) else ""
        out[code] = Listing(row[i_name].strip(), industry, listed)
    return out


def sector_id(industry: str) -> str:
    """A sector id (and file name) for an industry: the name itself, minus what a file name cannot hold."""
    return re.sub(r"[\s/\\:]+", "_", industry.strip()) or UNCLASSIFIED


def read_sector_map(facts: Path) -> dict[str, str]:
    path = facts / SECTOR_MAP
    if not path.is_file():
        return {}
    import yaml

    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    industries = data.get("industries") if isinstance(data, dict) else None
    if not isinstance(industries, dict):
        raise LookupFailure([problem(f"{facts.name}/{SECTOR_MAP}", 1, 1, "sector-map",
                                     "expected `industries:`, a mapping of industry -> sector id.",
                                     "e.g. `industries: {小金属: rare_earth_pm}`.")])
    return {str(k): str(v) for k, v in industries.items()}


def _map_text(known: dict[str, str], new: Iterable[str]) -> str:
    head = ("# Industries of the names list -> sectors of sectors/, for `verdict data import`.\n"
            "# Edit a right-hand side to put an industry into another sector (e.g. 小金属: rare_earth_pm)\n"
            "# and import again; industries an import sees first are added as their own sector.\n"
            "industries:\n")
    lines = [f"  {json.dumps(k, ensure_ascii=False)}: {json.dumps(v, ensure_ascii=False)}\n"
             for k, v in {**known, **{n: sector_id(n) for n in new}}.items()]
    return head + ("".join(lines) or "  {}\n")  # no names list: an empty mapping, which the next import reads


# ----------------------------------------------------------------------------------- the work of one file


@dataclass
class Gap:
    first: dt.date
    last: dt.date
    days: int


@dataclass
class FileResult:
    """What one source file gave (kept in the manifest, so an unchanged file is not read again)."""

    file: str
    status: str  # new, updated, unchanged, covered, bad
    code: str = ""
    exchange: str = ""
    board: str = ""
    problems: list[str] = field(default_factory=list)  # file:line: message (a bad file)
    notes: list[str] = field(default_factory=list)  # file:line: rows left out (exchange closed)
    first: str = ""
    last: str = ""
    rows: int = 0
    added: int = 0  # rows new to the normalised file
    gaps: list[tuple[str, str, int]] = field(default_factory=list)
    format: str = ""
    source_sha1: str = ""
    out_sha1: str = ""
    turnover: int = 0  # rows of turnover rate kept as a daily indicator
    basis_note: str = ""  # why the bars of a user's stock file were not joined to its history

    @property
    def ok(self) -> bool:
        return self.status != "bad"


@dataclass(frozen=True)
class Job:
    path: str
    shown: str
    out: str  # normalised prices file
    indicators_out: str  # where a turnover-rate column goes
    others: tuple[str, ...]  # other segments of the same stock (absolute paths), for overlap checks
    handwritten: bool
    replace: bool


def _fmt(x: float) -> str:
    text = repr(x)
    return text[:-2] if text.endswith(".0") else text


def render_bars(rows: list[Row]) -> bytes:
    out = ["date,open,high,low,close,volume,amount\n"]
    out += [f"{r.date.isoformat()},{_fmt(r.open)},{_fmt(r.high)},{_fmt(r.low)},{_fmt(r.close)},{_fmt(r.volume)},"
            f"{'' if r.amount is None else _fmt(round(r.amount, 4))}\n" for r in rows]
    return "".join(out).encode()


def _existing(path: Path) -> list[Row]:
    """Rows of a normalised file this import wrote before (read in the same way as any file)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    bf = read_bars(text, str(path))
    return [] if bf.problems else bf.rows


def classify_gaps(days: list[dt.date], calendar: TradingCalendar) -> list[Gap]:
    """Runs of trading days with no row, between the first and last row (within the calendar)."""
    if not days:
        return []
    have = set(days)
    last = min(days[-1], calendar.last)
    gaps: list[Gap] = []
    run: list[dt.date] = []
    for d in calendar.between(days[0], last):
        if d in have:
            if run:
                gaps.append(Gap(run[0], run[-1], len(run)))
                run = []
        else:
            run.append(d)
    return gaps


_calendar: TradingCalendar | None = None


def _import_file(job: Job) -> FileResult:
    """Read, check and normalise one file; write its prices file if its bytes change."""
    assert _calendar is not None
    path = Path(job.path)
    name = path.name
    content = path.read_bytes()
    res = FileResult(name, "bad", source_sha1=hashlib.sha1(content).hexdigest())
    bf: BarFile = read_bars(content.decode("utf-8", errors="replace"), job.shown)
    res.format = bf.format.name if bf.format else ""
    ident = symbol_of(path.stem, bf.code)
    if isinstance(ident, str):
        res.problems.append(f"{job.shown}:1: {ident}.")
        return res
    res.code, res.exchange, res.board = ident
    if bf.problems:
        res.problems = [f"{p.loc.file}:{p.loc.line}: {p.message}" for p in bf.problems]
        return res
    if not bf.rows:
        res.problems.append(f"{job.shown}:2: no rows.")
        return res
    rows = sorted(bf.rows, key=lambda r: r.date)
    kept = []
    for r in rows:  # a row on a day the exchange was closed is an error of the data: left out, and said
        if _calendar.covers(r.date) and not _calendar.is_open(r.date):
            res.notes.append(f"{job.shown}:{r.line}: {r.date} ({r.date:%a}) is not a trading day: row left out.")
        else:
            kept.append(r)
    rows = kept
    out = Path(job.out)
    before = _existing(out)
    merged = {r.date: r for r in before}
    clash = [(r, merged[r.date]) for r in rows if r.date in merged and abs(merged[r.date].close - r.close)
             > OVERLAP_TOLERANCE]
    if clash and not job.replace:
        ratios = [a.close / b.close for a, b in clash]
        res.problems.append(f"{job.shown}:{clash[0][0].line}: disagrees with the bars imported before "
                            f"({out.name}) on {len(clash)} day(s), close ratio {min(ratios):.5f}..{max(ratios):.5f}: "
                            "adjusted to another anchor (a newer qfq download). Import it with --replace to make "
                            "it this source's history, or under another --source.")
        return res
    if job.replace:
        merged = {}
    merged.update((r.date, r) for r in rows)
    series = [merged[d] for d in sorted(merged)]
    others = {}
    for other in job.others:  # other segments of the stock: the joined history must agree
        for r in _existing(Path(other)):
            others[r.date] = r
    disagree = [r for r in series if r.date in others and abs(others[r.date].close - r.close) > OVERLAP_TOLERANCE]
    if disagree and not job.handwritten and not job.replace:
        ratios = [r.close / others[r.date].close for r in disagree]
        res.problems.append(f"{job.shown}:{disagree[0].line}: disagrees with the other price segments of its stock "
                            f"on {len(disagree)} day(s) (close ratio {min(ratios):.5f}..{max(ratios):.5f}): another "
                            "adjustment basis. Import it with --replace to make it the stock's only history.")
        return res
    if disagree:  # a stock file of the user's, on another basis: the bars are imported but it keeps its own
        ratios = [r.close / others[r.date].close for r in disagree]
        res.basis_note = (f"its bars disagree with the history it has on {len(disagree)} day(s) (close ratio "
                          f"{min(ratios):.5f}..{max(ratios):.5f}, another adjustment anchor)")
    if job.replace and not job.handwritten:
        others = {}
    if job.handwritten and others and not disagree and all(r.date in others for r in series):
        res.status = "covered"  # every bar is already in the stock's own history: nothing to write
        res.rows, res.first, res.last = len(series), str(series[0].date), str(series[-1].date)
        return res
    data = render_bars(series)
    res.out_sha1 = hashlib.sha1(data).hexdigest()
    old = {r.date for r in before}
    res.added = sum(1 for r in series if r.date not in old)
    written = write_if_changed(out, data)
    res.status = "new" if not before else ("updated" if written else "unchanged")
    days = [r.date for r in series] if not others else sorted({r.date for r in series} | set(others))
    res.gaps = [(str(g.first), str(g.last), g.days) for g in classify_gaps(days, _calendar)]
    res.rows, res.first, res.last = len(series), str(series[0].date), str(series[-1].date)
    turnover = bf.extra.get("turnover_rate")
    if turnover:
        from .dailyfacts import merge_file

        res.turnover = merge_file(Path(job.indicators_out), {"turnover_rate": turnover})
    return res


# ----------------------------------------------------------------------------------- stock files


@dataclass
class StockEntry:
    """A stock file already in FACTS_DIR: its symbol, whether import generated it, its price segments."""

    path: Path
    symbol: str
    generated: bool
    segments: list[dict[str, Any]]
    data: dict[str, Any]


def _body_hash(body: str) -> str:
    return hashlib.sha1(body.encode()).hexdigest()


def scan_stocks(facts: Path) -> dict[str, StockEntry]:
    """code -> the stock file that defines it. Generated files are recognised by their mark and hash."""
    from .yamlsrc import fast_load

    out: dict[str, StockEntry] = {}
    for path in sorted((facts / "stocks").glob("*.yaml")):
        text = path.read_text(encoding="utf-8", errors="replace")
        _head, _, body = text.partition(MARK)
        generated = False
        if body:
            digest, _, rest = body.partition("\n")
            generated = digest.strip() == _body_hash(rest)
        data = fast_load(text)
        if not isinstance(data, dict) or not isinstance(data.get("symbol"), str):
            continue
        prices = data.get("prices") if isinstance(data.get("prices"), dict) else {}
        segments = [s for s in (prices or {}).get("segments", []) if isinstance(s, dict)]
        code = data["symbol"].partition(".")[0]
        out[code] = StockEntry(path, data["symbol"], generated, segments, data)
    return out


def _q(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def render_stock(symbol: str, name: str, sector: str, exchange: str, board: str, adjust: str,
                 segments: list[dict[str, Any]], gaps: list[tuple[str, str, int]], indicators: list[dict[str, Any]],
                 source: str) -> str:
    body = [f"symbol: {symbol}\n", f"name: {_q(name)}\n", f"sector: {_q(sector)}\n", f"exchange: {exchange}\n",
            f"board: {board}\n", "prices:\n", f"  adjust: {adjust}\n", "  volume_unit: lots\n", "  segments:\n"]
    for s in segments:
        anchor = f", anchor: {s['anchor']}" if s.get("anchor") else ""
        body.append(f"    - {{file: {_q(s['file'])}, source: {_q(s['source'])}{anchor}}}\n")
    if gaps:
        body.append("  suspensions:  # trading days (exchange calendar) with no row: presumed suspended\n")
        body += [f"    - [{a}, {b}]  # {n} trading day{'s' if n > 1 else ''}\n" for a, b, n in gaps]
    if indicators:
        body.append("indicators:\n")
        body += [f"  - {{file: {_q(i['file'])}, source: {_q(i['source'])}}}\n" for i in indicators]
    text = "".join(body)
    head = (SCHEMA_LINE.format(kind="stock")
            + f"# Generated by `verdict data import` ({source}). A re-import rewrites this file; once you edit it,\n"
            + "# it is yours: imports then only update the price files it names and report what to add here.\n")
    return head + MARK + _body_hash(text) + "\n" + text


# ----------------------------------------------------------------------------------- the summary


@dataclass
class ImportSummary:
    source: str
    folder: str
    facts: str
    adjust: str
    files: int = 0
    results: list[FileResult] = field(default_factory=list)
    not_linked: list[str] = field(default_factory=list)  # handwritten stock files with new bars
    unnamed: list[str] = field(default_factory=list)
    new_sectors: list[str] = field(default_factory=list)
    new_industries: list[str] = field(default_factory=list)
    rows_before_listing: list[str] = field(default_factory=list)
    stock_files_written: int = 0
    ignored: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def bad(self) -> list[FileResult]:
        return [r for r in self.results if r.status == "bad"]

    @property
    def good(self) -> list[FileResult]:
        return [r for r in self.results if r.ok]

    def as_dict(self) -> dict[str, Any]:
        good = self.good
        gapped = [r for r in good if r.gaps]
        first = min((r.first for r in good), default="")
        last = max((r.last for r in good), default="")
        return {
            "source": self.source, "folder": self.folder, "facts": self.facts, "adjust": self.adjust,
            "files": self.files, "imported": len(good),
            "new": self.count("new"), "updated": self.count("updated"), "unchanged": self.count("unchanged"),
            "covered": self.count("covered"), "bad": len(self.bad),
            "rows": sum(r.rows for r in good), "rows_added": sum(r.added for r in good),
            "first_date": first, "last_date": last,
            "complete": sum(1 for r in good if not r.gaps and r.first == first and r.last == last),
            "files_with_gaps": len(gapped), "gaps": sum(len(r.gaps) for r in gapped),
            "suspended_days": sum(n for r in gapped for _, _, n in r.gaps),
            "start_late": sum(1 for r in good if r.first > first), "end_early": sum(1 for r in good if r.last < last),
            "rows_left_out": sum(len(r.notes) for r in good),
            "stock_files_written": self.stock_files_written, "not_linked": self.not_linked,
            "unnamed": self.unnamed, "new_sectors": self.new_sectors, "new_industries": self.new_industries,
            "rows_before_listing": self.rows_before_listing, "ignored": self.ignored,
            "problems": [p for r in self.bad for p in r.problems],
            "notes": [n for r in good for n in r.notes], "seconds": round(self.seconds, 2),
        }

    def render(self) -> str:
        d = self.as_dict()
        good = self.good
        lines = [f"verdict data import: {d['files']:,} file(s) from {self.folder} into {self.facts} "
                 f"(source {self.source}, {self.adjust}) in {d['seconds']:.1f} s"]
        lines.append(f"  imported      {d['imported']:,}: {d['new']:,} new, {d['updated']:,} updated "
                     f"(+{d['rows_added']:,} rows), {d['unchanged']:,} unchanged"
                     + (f", {d['covered']} already in their stock file's history" if d["covered"] else ""))
        lines.append(f"  rows          {d['rows']:,}, {d['first_date']} .. {d['last_date']}; {d['complete']:,} file(s) "
                     "have every trading day of that span")
        if d["files_with_gaps"]:
            worst = sorted((r for r in good if r.gaps), key=lambda r: -sum(n for *_, n in r.gaps))[:3]
            lines.append(f"  suspensions   {d['files_with_gaps']:,} file(s) with {d['gaps']:,} gap(s), "
                         f"{d['suspended_days']:,} trading day(s) without a row, recorded as suspensions; most: "
                         + ", ".join(f"{r.code} ({sum(n for *_, n in r.gaps)} days in {len(r.gaps)})" for r in worst))
        late = sorted((r for r in good if r.first > d["first_date"]), key=lambda r: r.first)
        if late:
            lines.append(f"  late starts   {len(late):,} file(s) start after {d['first_date']} (listed later, or "
                         f"history cut): latest {late[-1].code} from {late[-1].first}")
        early = sorted((r for r in good if r.last < d["last_date"]), key=lambda r: r.last)
        if early:
            lines.append(f"  early ends    {len(early):,} file(s) end before {d['last_date']} (suspended or "
                         "delisted): " + ", ".join(f"{r.code} {r.last}" for r in early[:5])
                         + (" ..." if len(early) > 5 else ""))
        if d["rows_left_out"]:
            lines.append(f"  closed days   {d['rows_left_out']:,} row(s) on days the exchange was closed, left out: "
                         + "; ".join(d["notes"][:3]) + (" ..." if d["rows_left_out"] > 3 else ""))
        for msg in self.rows_before_listing[:5]:
            lines.append(f"  listing       {msg}")
        if self.unnamed:
            more = " ..." if len(self.unnamed) > 10 else ""
            lines.append(f"  names         {len(self.unnamed)} code(s) not in the names list (named by code, sector "
                         f"'{UNCLASSIFIED}'): {', '.join(self.unnamed[:10])}{more}")
        if self.new_sectors:
            lines.append(f"  sectors       {len(self.new_sectors)} new sector file(s) in sectors/ (industries "
                         f"mapped in {SECTOR_MAP}; edit it to group them)")
        if self.not_linked:
            lines += [f"  not linked    {m}" for m in self.not_linked[:10]]
        if self.ignored:
            lines.append(f"  ignored       {len(self.ignored)} file(s) not ending in .csv: "
                         f"{', '.join(self.ignored[:5])}")
        if self.bad:
            lines.append(f"  bad files     {len(self.bad)} not imported (the others were):")
            for r in self.bad[:20]:
                more = f" (+{len(r.problems) - 1} more)" if len(r.problems) > 1 else ""
                lines.append(f"    {r.problems[0]}{more}")
            if len(self.bad) > 20:
                lines.append(f"    ... and {len(self.bad) - 20} more (--format json lists every one)")
        lines.append(f"  stock files   {self.stock_files_written:,} written (the others unchanged)")
        return "\n".join(lines)


# ----------------------------------------------------------------------------------- the import


def default_source_id(folder: Path) -> str:
    return re.sub(r"[^a-z0-9]+", "-", folder.resolve().name.lower()).strip("-") or "imported"


def _source_entry(source: str, folder: Path, fmt: str, adjust: str) -> str:
    publisher = BY_NAME[fmt].publisher if fmt in BY_NAME else PUBLISHERS.get(fmt, fmt)
    title = f"Daily bars of {folder.name}/ ({fmt} format, {adjust})" if adjust != "daily indicators" else \
        f"Daily indicators of {folder.name}/ ({fmt})"
    note = "Imported by verdict data import; volume in lots, amount in RMB thousands. Known on their trading day."
    return f"  {source}:\n    title: {_q(title)}\n    publisher: {_q(publisher)}\n    note: {_q(note)}\n"


def add_source(facts: Path, source: str, folder: Path, fmt: str, adjust: str) -> bool:
    """Append `source` to the facts folder's sources.yaml (its other text kept); False if already there."""
    import yaml

    path = facts / "sources.yaml"
    text = path.read_text(encoding="utf-8") if path.is_file() else "sources:\n"
    data = yaml.safe_load(text) or {}
    if source in (data.get("sources") or {}):
        return False
    new = text + ("" if text.endswith("\n") else "\n") + _source_entry(source, folder, fmt, adjust)
    if source not in ((yaml.safe_load(new) or {}).get("sources") or {}):
        raise LookupFailure([problem(f"{facts.name}/sources.yaml", 1, 1, "sources-layout",
                                     "cannot add the import's source: the file does not end inside `sources:`.",
                                     "Keep `sources:` as the last key of sources.yaml.")])
    write_if_changed(path, new.encode())
    return True


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if data.get("format") == MANIFEST_FORMAT else {}


def _reuse(job: Job, seen: dict[str, Any], content_sha1: str) -> FileResult | None:
    """The result of an earlier import of the same bytes, if what it wrote is still there unchanged."""
    if not seen or seen.get("source_sha1") != content_sha1 or seen.get("status") == "bad":
        return None
    if seen.get("status") == "covered":
        return FileResult(**{**seen, "gaps": [tuple(g) for g in seen.get("gaps", [])], "added": 0})
    try:
        if hashlib.sha1(Path(job.out).read_bytes()).hexdigest() != seen.get("out_sha1"):
            return None
    except OSError:
        return None
    return FileResult(**{**seen, "status": "unchanged", "added": 0, "gaps": [tuple(g) for g in seen["gaps"]]})


def import_folder(folder: Path, facts: Path, names: Path | None = None, source: str | None = None,
                  adjust: str = "qfq", replace: bool = False, jobs: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> ImportSummary:
    """Import every *.csv of `folder` into `facts` (see the module note); the library face of the command."""
    import gc

    paused = gc.isenabled()  # millions of rows, no cycles: the collector would only walk them (forks inherit)
    gc.disable()
    try:
        return _import_folder(folder, facts, names, source, adjust, replace, jobs, progress)
    finally:
        if paused:
            gc.enable()


def _import_folder(folder: Path, facts: Path, names: Path | None, source: str | None, adjust: str, replace: bool,
                   jobs: int | None, progress: Callable[[int, int], None] | None) -> ImportSummary:
    start = time.perf_counter()
    global _calendar
    if not folder.is_dir():
        raise LookupFailure([problem(str(folder), 0, 0, "no-folder", f"'{folder}' is not a folder.",
                                     "Give the folder of per-symbol daily-bar files.")])
    if not (facts / "catalog.yaml").is_file():
        raise LookupFailure([problem(str(facts), 0, 0, "no-facts-dir",
                                     f"'{facts}' is not a facts directory (no catalog.yaml).",
                                     "Copy the bundled facts/ there first: the catalog and sources come with it.")])
    source = source or default_source_id(folder)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", source):
        raise LookupFailure([problem("--source", 0, 0, "bad-source-id", f"'{source}' is not a usable source id.",
                                     "Use letters, digits, '-', '_' and '.', e.g. tushare-qfq-2025.")])
    listings = read_names(names) if names else {}
    _calendar = exchange_calendar(facts)
    summary = ImportSummary(source, folder.name, facts.name, adjust)
    paths = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    summary.ignored = [p.name for p in paths if p.suffix.lower() != ".csv"]
    paths = [p for p in paths if p.suffix.lower() == ".csv"]
    summary.files = len(paths)
    stocks = scan_stocks(facts)
    out_dir = facts / "prices" / source
    ind_dir = facts / "indicators" / source
    rel = f"prices/{source}"
    manifest_path = out_dir / MANIFEST
    manifest = _read_manifest(manifest_path)

    jobs_list: list[Job] = []
    for p in paths:
        from .barformats import code_of

        code = code_of(p.stem) or p.stem
        entry = stocks.get(code)
        mine = f"{rel}/{code}.csv"
        others = tuple(str(facts / s["file"]) for s in (entry.segments if entry else [])
                       if s.get("file") != mine and isinstance(s.get("file"), str))
        jobs_list.append(Job(str(p), f"{folder.name}/{p.name}", str(out_dir / f"{code}.csv"),
                             str(ind_dir / f"{code}.csv"), others, bool(entry and not entry.generated), replace))

    results: list[FileResult | None] = [None] * len(jobs_list)
    todo: list[int] = []
    for i, job in enumerate(jobs_list):
        seen = manifest.get(Path(job.path).name)
        if seen and not replace:
            sha = hashlib.sha1(Path(job.path).read_bytes()).hexdigest()
            results[i] = _reuse(job, seen, sha)
        if results[i] is None:
            todo.append(i)
    done = len(jobs_list) - len(todo)
    if progress:
        progress(done, len(jobs_list))
    for i, res in _run(jobs_list, todo, jobs):
        results[i] = res
        done += 1
        if progress:
            progress(done, len(jobs_list))
    summary.results = [r for r in results if r is not None]

    # Shared files first (sources, sector map, sectors), then each stock's file: nothing names what is not there.
    good = [r for r in summary.results if r.ok]
    fmt = next((r.format for r in good), "csv")
    if good:
        add_source(facts, source, folder, fmt, adjust)
    known_map = read_sector_map(facts)
    industries = sorted({listings[r.code].industry for r in good if r.code in listings and listings[r.code].industry})
    summary.new_industries = [i for i in industries if i not in known_map]
    if summary.new_industries or not (facts / SECTOR_MAP).is_file():
        write_if_changed(facts / SECTOR_MAP, _map_text(known_map, summary.new_industries).encode())
    sector_of = {**known_map, **{n: sector_id(n) for n in summary.new_industries}}
    have_sectors = _sector_ids(facts)
    for r in good:
        if r.status == "covered" or (r.code in stocks and not stocks[r.code].generated):
            continue
        listing = listings.get(r.code)
        sector = sector_of.get(listing.industry, UNCLASSIFIED) if listing and listing.industry else UNCLASSIFIED
        if sector not in have_sectors:
            name = next((k for k, v in sector_of.items() if v == sector), sector)
            _write_sector(facts, sector, name)
            have_sectors.add(sector)
            summary.new_sectors.append(sector)

    for r in good:
        listing = listings.get(r.code)
        if listing and listing.list_date and r.first < str(listing.list_date):
            summary.rows_before_listing.append(f"{folder.name}/{r.file}: rows from {r.first}, before the listing "
                                               f"date {listing.list_date} of the names list")
        entry = stocks.get(r.code)
        if entry is not None and not entry.generated:
            linked = any(s.get("file") == f"{rel}/{r.code}.csv" for s in entry.segments)
            if r.basis_note and not linked:
                summary.not_linked.append(f"{entry.path.relative_to(facts)} is yours: {r.basis_note}; they are in "
                                          f"{rel}/{r.code}.csv, and the stock keeps the history it names")
            elif r.status in ("new", "updated") and not linked:
                summary.not_linked.append(
                    f"{entry.path.relative_to(facts)} is yours (not generated): its new bars are in "
                    f"{rel}/{r.code}.csv; add `- {{file: {rel}/{r.code}.csv, source: {source}}}` to its prices: "
                    "segments to use them")
            continue
        if listing is None and names is not None:
            summary.unnamed.append(r.code)
        sector = sector_of.get(listing.industry, UNCLASSIFIED) if listing and listing.industry else UNCLASSIFIED
        segments = [s for s in (entry.segments if entry else []) if s.get("source") != source and not replace]
        segments.append({"file": f"{rel}/{r.code}.csv", "source": source,
                         "anchor": r.last if adjust == "qfq" else None})
        indicators = [i for i in ((entry.data.get("indicators") or []) if entry else [])
                      if isinstance(i, dict) and i.get("source") != source]
        if r.turnover or (ind_dir / f"{r.code}.csv").is_file():
            indicators.append({"file": f"indicators/{source}/{r.code}.csv", "source": source})
        text = render_stock(f"{r.code}.{r.exchange}", listing.name if listing else r.code, sector, r.exchange,
                            r.board, adjust, segments, r.gaps, indicators, source)
        target = entry.path if entry else facts / "stocks" / f"{r.code}.yaml"
        if write_if_changed(target, text.encode()):
            summary.stock_files_written += 1

    manifest_out = {"format": MANIFEST_FORMAT,  # what each file gave, not what this run did with it
                    "files": {r.file: {**asdict(r), "status": "covered" if r.status == "covered" else "imported",
                                       "added": 0} for r in summary.results if r.ok}}
    if summary.results and any(r.ok for r in summary.results):
        write_if_changed(manifest_path, (json.dumps(manifest_out, indent=0, sort_keys=True) + "\n").encode())
    summary.seconds = time.perf_counter() - start
    return summary


def _sector_ids(facts: Path) -> set[str]:
    from .yamlsrc import fast_load

    out = set()
    for p in (facts / "sectors").glob("*.yaml"):
        data = fast_load(p.read_text(encoding="utf-8", errors="replace"))
        if isinstance(data, dict) and isinstance(data.get("sector"), str):
            out.add(data["sector"])
    return out


def _write_sector(facts: Path, sector: str, industry: str) -> None:
    text = (SCHEMA_LINE.format(kind="sector")
            + f"# Generated by `verdict data import` for the industry {industry}; add sector facts here.\n"
            + f"sector: {_q(sector)}\nname: {_q(industry)}\nfacts: {{}}\n")
    write_if_changed(facts / "sectors" / f"{sector}.yaml", text.encode())


def _run(jobs_list: list[Job], todo: list[int], jobs: int | None) -> Iterable[tuple[int, FileResult]]:
    """Each file in a worker process (forked after the calendar is loaded), results in order of completion."""
    n = jobs or os.cpu_count() or 1
    if n <= 1 or len(todo) < 64:
        for i in todo:
            yield i, _import_file(jobs_list[i])
        return
    import multiprocessing as mp

    ctx = mp.get_context("fork")
    with ctx.Pool(n) as pool:
        yield from zip(todo, pool.imap(_import_file, [jobs_list[i] for i in todo], chunksize=32), strict=True)


def check(summary: ImportSummary) -> list[Problem]:
    """The bad files as problems (for an exit code and the one-paragraph error style)."""
    return [problem(p.partition(":")[0], int(p.split(":")[1]) if p.split(":")[1].isdigit() else 0, 1,
                    "import-bad-file", p.split(": ", 1)[1] if ": " in p else p, "")
            for r in summary.bad for p in r.problems[:1]]


__all__ = ["FactError", "ImportSummary", "import_folder"]


# ----------------------------------------------------------------------------------- daily indicator tables


INDICATOR_HEADERS = {  # Tushare daily_basic column -> (fact, factor to the catalog's unit)
    "pe": ("pe", 1.0), "pe_ttm": ("pe_ttm", 1.0), "pb": ("pb", 1.0), "ps": ("ps", 1.0), "ps_ttm": ("ps_ttm", 1.0),
    "dv_ratio": ("dv_ratio", 1.0), "dv_ttm": ("dv_ttm", 1.0), "turnover_rate": ("turnover_rate", 1.0),
    "volume_ratio": ("volume_ratio", 1.0),
    "total_mv": ("total_mv", 1e-4), "circ_mv": ("circ_mv", 1e-4),  # 万元 -> 亿元
}


def is_indicator_folder(folder: Path) -> bool:
    """Whether the folder holds daily indicator tables (Tushare daily_basic) rather than bars."""
    first = next((p for p in sorted(folder.glob("*.csv"))), None) if folder.is_dir() else None
    if first is None:
        return False
    with first.open(encoding="utf-8-sig") as f:
        head = {h.strip().lower() for h in f.readline().split(",")}
    return "trade_date" in head and "ts_code" in head and bool(head & {"pe_ttm", "pb", "total_mv"}) \
        and "open" not in head


def import_indicators(folder: Path, facts: Path, source: str | None = None) -> ImportSummary:
    """Tushare daily_basic tables (one file per symbol or per date, any mix) -> indicators/<source>/<code>.csv,
    named under `indicators:` by the generated stock files; a user's stock file is told what to add."""
    start = time.perf_counter()
    source = source or default_source_id(folder)
    summary = ImportSummary(source, folder.name, facts.name, "daily indicators")
    by_code: dict[str, dict[str, dict[dt.date, float]]] = {}
    paths = sorted(folder.glob("*.csv"))
    summary.files = len(paths)
    for p in paths:
        shown = f"{folder.name}/{p.name}"
        res = FileResult(p.name, "bad", format="tushare-daily_basic")
        rows = list(csv.reader(io.StringIO(p.read_text(encoding="utf-8-sig"))))
        head = [h.strip().lower() for h in rows[0]] if rows else []
        if "ts_code" not in head or "trade_date" not in head:
            res.problems.append(f"{shown}:1: needs ts_code and trade_date columns (Tushare daily_basic).")
            summary.results.append(res)
            continue
        i_code, i_date = head.index("ts_code"), head.index("trade_date")
        cols = [(i, *INDICATOR_HEADERS[h]) for i, h in enumerate(head) if h in INDICATOR_HEADERS]
        seen: set[tuple[str, dt.date]] = set()
        mine: dict[str, dict[str, dict[dt.date, float]]] = {}
        for n, row in enumerate(rows[1:], start=2):
            if not row:
                continue
            try:
                from .barformats import parse_date

                code, day = row[i_code].strip().partition(".")[0], parse_date(row[i_date])
                vals = {name: float(row[i]) * k for i, name, k in cols if i < len(row) and row[i].strip()}
            except (ValueError, IndexError) as exc:
                res.problems.append(f"{shown}:{n}: unreadable row ({exc}).")
                continue
            if (code, day) in seen:
                res.problems.append(f"{shown}:{n}: {code} on {day} is given twice.")
                continue
            seen.add((code, day))
            table = mine.setdefault(code, {})
            for name, v in vals.items():
                table.setdefault(name, {})[day] = v
        res.status = "bad" if res.problems else "new"
        res.rows = len(seen)
        summary.results.append(res)
        if res.problems:  # a bad table is not half-imported: nothing of it is used
            continue
        for code, table in mine.items():
            for name, by_day in table.items():
                by_code.setdefault(code, {}).setdefault(name, {}).update(by_day)
    if not by_code:
        summary.seconds = time.perf_counter() - start
        return summary
    add_source(facts, source, folder, "tushare daily_basic", "daily indicators")
    stocks = scan_stocks(facts)
    rel = f"indicators/{source}"
    for code, table in sorted(by_code.items()):
        entry = stocks.get(code)
        merge_path = facts / rel / f"{code}.csv"
        from .dailyfacts import merge_file

        merge_file(merge_path, table)
        if entry is None:
            summary.not_linked.append(f"{code}: no stock file in {facts.name}/stocks (import its bars first); the "
                                      f"table is in {rel}/{code}.csv")
            continue
        if any(isinstance(i, dict) and i.get("file") == f"{rel}/{code}.csv"
               for i in entry.data.get("indicators") or []):
            continue
        if not entry.generated:
            summary.not_linked.append(f"{entry.path.relative_to(facts)} is yours: add `indicators: [{{file: "
                                      f"{rel}/{code}.csv, source: {source}}}]` to use its table")
            continue
        link_indicators(entry, f"{rel}/{code}.csv", source)
        summary.stock_files_written += 1
    summary.seconds = time.perf_counter() - start
    return summary


def link_indicators(entry: StockEntry, file: str, source: str) -> None:
    """Rewrite a generated stock file with one more indicator table (its other content as it was)."""
    text = entry.path.read_text(encoding="utf-8")
    head, _, body = text.partition(MARK)
    _digest, _, rest = body.partition("\n")
    line = f"  - {{file: {_q(file)}, source: {_q(source)}}}\n"
    rest = rest + line if "\nindicators:\n" in "\n" + rest else rest + "indicators:\n" + line
    write_if_changed(entry.path, (head + MARK + _body_hash(rest) + "\n" + rest).encode())
