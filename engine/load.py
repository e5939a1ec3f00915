"""Stage 1, load: YAML files -> checked models, every problem with file:line:col.

Reads rule packs, the rating policy, the fact catalog, sources, and stock/sector/commodity facts.
Expressions are parsed and type-checked here, all problems of all files are collected before
anything is reported. Nothing here touches durable_rules, the clock or the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import gc
import hashlib
import os
import re
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from . import expr, formulas
from .calendar import exchange_calendar
from .dailyfacts import DailySeries
from .errors import FactError, Location, LookupFailure, Problem, RuleError, did_you_mean, problem
from .limits import MAX_ABS_NUMBER, number_problem
from .model import (
    Catalog,
    CommodityFile,
    FactBaseFile,
    FactSpec,
    FactValue,
    Pack,
    Policy,
    Rule,
    SectorFile,
    Source,
    SourceList,
    StockFile,
    ValuationMethod,
)
from .parsecache import ParseCache
from .prices import PriceSeries, check_gaps, load_series
from .readfile import read_file
from .yamlsrc import Loc, SourceDoc, fast_load, parse_bytes, read_yaml

M = TypeVar("M", bound=BaseModel)

POLICY_FILE = "policy.yaml"
CATALOG_FILE = "catalog.yaml"
SOURCES_FILE = "sources.yaml"
COMMODITIES_FILE = "commodities.yaml"
BASE_FILE = "base.yaml"


def display_path(path: Path, root: Path | None = None) -> str:
    """How a file is named in messages and outputs: `<root dir name>/<path inside it>`.

    Independent of the working directory, so the same rules give the same output (and a replay from
    an audit snapshot reproduces it byte for byte); paths outside a root are shown as given.
    """
    if root is not None:
        if path.is_relative_to(root):  # found under the root: no need to resolve links (it costs a stat each)
            return str(Path(root.name) / path.relative_to(root))
        try:
            return str(Path(root.name) / path.resolve().relative_to(root.resolve()))
        except ValueError:
            pass
    return str(path)


# --------------------------------------------------------------------------------- validation


def _tag_compatible(tag: str, data: Any) -> bool | None:
    """pydantic puts union member names into `loc`; say whether this member fits the data."""
    if tag.startswith("list["):
        return isinstance(data, list)
    if tag[:1].isupper() and "[" not in tag:
        return isinstance(data, dict)
    if tag in ("str", "int", "float", "bool"):
        return not isinstance(data, (dict, list))
    return None


def _clean_loc(data: Any, loc: tuple[Any, ...]) -> tuple[Loc, bool]:
    """Drop union tags from `loc`; the flag says whether the error belongs to the branch that fits."""
    out: list[str | int] = []
    cur = data
    for part in loc:
        if isinstance(part, str) and not (isinstance(cur, dict) and part in cur):
            fits = _tag_compatible(part, cur)
            if fits is not None:
                if not fits:
                    return tuple(out), False
                continue
        out.append(part)
        if isinstance(cur, dict):
            cur = cur.get(part)
        elif isinstance(cur, list) and isinstance(part, int) and part < len(cur):
            cur = cur[part]
        else:
            cur = None
    return tuple(out), True


def _fields_of(model: type[BaseModel], data: Any, loc: Loc) -> list[str]:
    """Field names allowed at `loc` (for a did-you-mean on unknown keys)."""
    from typing import get_args, get_origin

    current: Any = model
    for part in loc[:-1]:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return []
        f = current.model_fields.get(str(part))
        if f is None:
            return []
        ann: Any = f.annotation
        found = None
        stack = [ann]
        while stack:
            t = stack.pop()
            if isinstance(t, type) and issubclass(t, BaseModel):
                found = t
                break
            if get_origin(t) is not None or get_args(t):
                stack.extend(get_args(t))
        current = found
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def validate(model: type[M], doc: SourceDoc, base: Loc = (), data: Any = None) -> tuple[M | None, list[Problem]]:
    """Validate part of a document against a model; errors point at the offending key or value."""
    payload = doc.data if data is None else data
    try:
        return model.model_validate(payload), []
    except ValidationError as exc:
        problems: list[Problem] = []
        seen: set[tuple[Loc, str]] = set()
        for err in exc.errors():
            loc, fits = _clean_loc(payload, tuple(err["loc"]))
            if not fits:
                continue
            full = (*base, *loc)
            kind = err["type"]
            if (full, kind) in seen:
                continue
            seen.add((full, kind))
            if kind == "extra_forbidden":
                key = str(loc[-1]) if loc else "?"
                allowed = _fields_of(model, payload, loc)
                hint = did_you_mean(key, allowed) or (f"Allowed keys here: {', '.join(allowed)}." if allowed else "")
                where = doc.key_at(full)
                problems.append(problem(where.file, where.line, where.col, "unknown-key",
                                        f"unknown key '{key}'.", hint, input=key))
                continue
            where = doc.at(full)
            name = ".".join(str(p) for p in loc) or "the document"
            msg = err["msg"]
            if kind == "missing":
                text, hint = f"'{loc[-1]}' is required here but missing.", f"Add '{loc[-1]}:' to this entry."
                where = doc.at(full[:-1])
            elif kind.startswith("model_type") or kind == "model_attributes_type":
                text, hint = f"'{name}' must be a mapping of keys to values.", ""
            else:
                text, hint = f"'{name}': {msg[0].lower() + msg[1:]}.".replace("..", "."), ""
            problems.append(problem(where.file, where.line, where.col, kind.replace("_", "-"), text, hint,
                                    input=None if kind == "missing" else err.get("input")))
        return None, problems


def read_mapping(path: Path, root: Path | None, problems: list[Problem], content: bytes | None = None
                 ) -> SourceDoc | None:
    """The document of a mapping file (`content`: its bytes, already read), or None with its problems."""
    shown = display_path(path, root)
    doc, errs = parse_bytes(content, shown) if content is not None else read_yaml(path, shown)
    problems.extend(errs)
    if doc.data is None and not errs:
        problems.append(problem(doc.path, 1, 1, "empty-file", "the file is empty.",
                                "Remove it or give it content."))
        return None
    if not isinstance(doc.data, dict):
        if not errs:
            problems.append(problem(doc.path, 1, 1, "not-a-mapping", "the file must be a YAML mapping (key: value).",
                                    "Start it with the keys its format needs, e.g. `pack:` and `rules:`."))
        return None
    return doc


# --------------------------------------------------------------------------------- facts


@dataclass
class StockFacts:
    file: StockFile
    path: str
    facts: dict[str, list[FactValue]]
    doc: SourceDoc | None
    series: PriceSeries | None = None
    daily: list[DailySeries] | None = None  # read on first use: FactBase.daily_series

    @cached_property
    def newest(self) -> dt.date | None:
        """The latest day any of its facts describes or became known: evaluated on or after it, nothing
        needs filtering."""
        return newest_day(self.facts)


@dataclass
class SectorFacts:
    file: SectorFile
    path: str
    facts: dict[str, list[FactValue]]

    @cached_property
    def newest(self) -> dt.date | None:
        return newest_day(self.facts)


def newest_day(facts: dict[str, list[FactValue]]) -> dt.date | None:
    return max((max(v.as_of, v.known) for vs in facts.values() for v in vs), default=None)


@dataclass
class FactBase:
    """Everything under facts/: the catalog, sources, and the facts of every symbol and sector."""

    root: Path
    catalog: Catalog
    sources: dict[str, Source]
    stocks: dict[str, StockFacts]
    sectors: dict[str, SectorFacts]
    commodities: dict[str, list[FactValue]]
    files: dict[str, bytes] = field(default_factory=dict)
    as_of: dt.date | None = None  # facts/base.yaml, else the newest date of any fact or price
    skipped: list[Problem] = field(default_factory=list)  # problems of stocks left out (partial loads)
    skipped_files: dict[str, list[Problem]] = field(default_factory=dict)  # stock file -> its problems
    commodity_sectors: frozenset[str] | None = None  # commodities.yaml `sectors:`; None: every stock

    def commodities_of(self, sector: str) -> dict[str, list[FactValue]]:
        """The commodity facts a stock of `sector` sees: those of commodities.yaml when it names the sector
        (or names none)."""
        if self.commodity_sectors is None or sector in self.commodity_sectors:
            return self.commodities
        return {}

    def latest_date(self) -> dt.date | None:
        days = [d for s in self.stocks.values() if (d := s.newest) is not None]
        days += [s.series.bars[-1].date for s in self.stocks.values() if s.series and s.series.bars]
        return max(days) if days else None

    def evaluation_date(self, as_of: dt.date | None = None) -> dt.date | None:
        return as_of or self.as_of or self.latest_date()

    def daily_series(self, stock: StockFacts) -> list[DailySeries]:
        """The stock's daily fact tables, read on first use (a universe loads without reading them)."""
        if stock.daily is None:
            from . import dailyfacts

            known = {name for ns, fields in self.catalog.namespaces.items() if ns == "stock" for name in fields}
            stock.daily = [dailyfacts.load(self.root, self.root.name, t.file, t.source, known, self.files)
                           for t in stock.file.indicators]
        return stock.daily

    @cached_property
    def _index(self) -> dict[str, StockFacts]:
        out: dict[str, StockFacts] = {}
        for s in self.stocks.values():
            for key in (s.file.symbol, s.file.code, s.file.name, *s.file.aliases):
                out.setdefault(key.lower(), s)
        return out

    def find(self, query: str) -> StockFacts:
        """A symbol by code (600111), code with exchange (600111.SH), name or alias, any case."""
        hit = self._index.get(query.strip().lower())
        if hit is not None:
            return hit
        code = query.strip().partition(".")[0].lower()
        for file, ps in self.skipped_files.items():
            if Path(file).stem.lower() == code:  # stocks/<code>.yaml was left out: say why
                raise FactError(ps)
        known = sorted({s.file.symbol for s in self.stocks.values()} | {s.file.name for s in self.stocks.values()})
        hint = did_you_mean(query, known + [s.file.code for s in self.stocks.values()])
        listing = ", ".join(f"{s.file.symbol} {s.file.name}" for s in self.stocks.values())
        left_out = f" Left out because of problems: {', '.join(self.skipped_files)}." if self.skipped_files else ""
        raise LookupFailure([problem(display_path(self.root), 0, 0, "unknown-symbol",
                                     f"no facts for symbol '{query}' in {display_path(self.root)}.",
                                     (hint + " " if hint else "") + f"Known symbols: {listing}.{left_out} Add a "
                                     "stocks/<code>.yaml file there to evaluate another.")])


def _load_stock(path: Path, shown: str, key: str, catalog: Catalog | None, sources: dict[str, Source],
                sectors: dict[str, SectorFacts], stocks: dict[str, StockFacts], problems: list[Problem],
                root: Path, files: dict[str, bytes], cache: ParseCache | None = None) -> None:
    """One stock file (`shown`: its display_path, `key`: its path inside `root`). A universe has thousands:
    they are read first without position maps, and only a file with a problem is read again with them,
    so every problem still has its line and column."""
    content = read_file(path, shown, problems)
    if content is None:
        return
    files[key] = content
    data = cache.parse(content, fast_load) if cache else fast_load(content.decode("utf-8", errors="replace"))
    if isinstance(data, dict):
        start, count = len(problems), len(stocks)
        fast = SourceDoc(shown, data)
        _add_stock(fast, catalog, sources, sectors, stocks, problems)
        if len(problems) == start:
            fast.data = None  # checked and built: the parsed form is not needed again (a universe is large)
            return
        del problems[start:]
        if len(stocks) > count:  # _add_stock adds at most its own symbol, last
            stocks.popitem()
    sd = read_mapping(path, root, problems, content)
    if not sd:
        return
    _add_stock(sd, catalog, sources, sectors, stocks, problems)


def _add_stock(sd: SourceDoc, catalog: Catalog | None, sources: dict[str, Source], sectors: dict[str, SectorFacts],
               stocks: dict[str, StockFacts], problems: list[Problem]) -> None:
    stf, errs = validate(StockFile, sd, data={**sd.data, "facts": {}})
    problems.extend(errs)
    facts = fact_entries(sd, sd.data.get("facts"), "stock", catalog, sources, problems)
    if stf is None:  # only unknown keys? then its sector and prices are still checked in this run
        stf = _salvage({**sd.data, "facts": {}}, StockFile)
    if stf is None:
        return
    if stf.symbol in stocks:
        problems.append(problem(sd.path, 1, 1, "duplicate-symbol",
                                f"symbol {stf.symbol} is also defined in {stocks[stf.symbol].path}.",
                                "Keep one file per symbol."))
        return
    if stf.sector not in sectors:
        where = sd.at(("sector",))
        problems.append(problem(where.file, where.line, where.col, "unknown-sector",
                                f"sector '{stf.sector}' has no file in sectors/.",
                                did_you_mean(stf.sector, list(sectors)) or "Add sectors/<name>.yaml."))
    stocks[stf.symbol] = StockFacts(stf, sd.path, facts, sd)


def fact_entries(doc: SourceDoc, facts: Any, ns: str, catalog: Catalog | None, sources: dict[str, Source],
                  problems: list[Problem]) -> dict[str, list[FactValue]]:
    """The checked values of a `facts:` mapping of namespace `ns` (problems appended, bad entries left out)."""
    out: dict[str, list[FactValue]] = {}
    if not isinstance(facts, dict):
        return out
    for name, entry in facts.items():
        is_list = isinstance(entry, list)
        items = entry if is_list else [entry]
        values: list[FactValue] = []
        spec = catalog.spec(f"{ns}.{name}") if catalog else None
        if catalog is not None and spec is None:
            where = doc.key_at(("facts", name))
            problems.append(problem(where.file, where.line, where.col, "unknown-fact",
                                    f"'{ns}.{name}' is not in the fact catalog.",
                                    did_you_mean(f"{ns}.{name}", catalog.paths()) or
                                    "Declare it in facts/catalog.yaml (type, unit, family) or fix the name."))
            continue
        number = spec is not None and spec.type == "number"
        for i, item in enumerate(items):
            fv = checked_fact(item)
            if fv is None:  # not plainly well-formed: pydantic decides, and words the problem if there is one
                fv, errs = validate(FactValue, doc, _entry_loc(name, i, is_list), item)
                problems.extend(errs)
                if fv is None:
                    continue
            source = sources.get(fv.source)
            if source is None:
                where = doc.at(_entry_loc(name, i, is_list))
                problems.append(problem(where.file, where.line, where.col, "unknown-source",
                                        f"source '{fv.source}' is not listed in facts/{SOURCES_FILE}.",
                                        did_you_mean(fv.source, list(sources)) or "Add it there with title, "
                                        "publisher, date and address."))
                continue
            published = source.date
            if fv.known_at is None and published is not None and published > fv.as_of:
                fv.known_at = published  # not known before its source was published
            if spec is not None:
                v = fv.value
                if number and (type(v) is float or type(v) is int):  # the common case, as _type_problem words it
                    why = _number_problem(v, spec)
                    bad = f"value {why}" if why else ""
                else:
                    bad = _type_problem(fv, spec)
                if bad:
                    where = doc.at(_entry_loc(name, i, is_list))
                    problems.append(problem(where.file, where.line, where.col, "fact-type",
                                            f"'{ns}.{name}' {bad}.", f"The catalog declares it as {spec.type}."))
                    continue
            values.append(fv)
        if values:
            out[sys.intern(name) if type(name) is str else name] = values
    return out


def _entry_loc(name: str, i: int, in_list: bool) -> Loc:
    return ("facts", name, i) if in_list else ("facts", name)


# A fact entry whose keys and value types are plainly right is built without pydantic (a universe has
# ~150,000 of them); anything else goes through FactValue.model_validate, which also words the problem.
def _shared_template() -> dict[str, Any]:
    """Every field's default, in field order, as an instance dict whose keys its copies share (CPython's
    split tables): each model then keeps only its values, half the memory of a dict of its own."""
    probe = FactValue.__new__(FactValue)
    for k, f in FactValue.model_fields.items():
        object.__setattr__(probe, k, f.default)
    return probe.__dict__


_FACT_TEMPLATE = _shared_template()
_TEXT, _DATE, _VALUE, _BOUND = range(4)
_FIELD_KIND = {"value": _VALUE, "gt": _BOUND, "gte": _BOUND, "lt": _BOUND, "lte": _BOUND, "as_of": _DATE,
               "known_at": _DATE, "source": _TEXT, "unit": _TEXT, "note": _TEXT, "basis": _TEXT}
assert set(_FIELD_KIND) == set(_FACT_TEMPLATE), "a FactValue field the fast path does not know"
_SCALAR_TYPES = frozenset((bool, int, float, str, dt.date))  # kept as they are by the model's Scalar union
_DATES: dict[Any, dt.date] = {}  # YYYY-MM-DD text or date -> the date (shared: a universe repeats a few days)


def _plain_date(v: Any) -> dt.date | None:
    """A date as pydantic reads it from a date or a YYYY-MM-DD text; None when that takes pydantic."""
    if type(v) is dt.date:
        day = v
    elif type(v) is str and len(v) == 10 and v[4] == "-" and v[7] == "-" and v.isascii() and v[:4].isdigit() \
            and v[5:7].isdigit() and v[8:].isdigit():
        try:
            day = dt.date.fromisoformat(v)
        except ValueError:  # 2026-02-30: pydantic says why
            return None
    else:
        return None
    if len(_DATES) > 100_000:
        _DATES.clear()
    _DATES[v] = day
    return day


def checked_fact(item: Any) -> FactValue | None:
    """The FactValue pydantic would validate `item` to, built directly when cheap checks prove it
    well-formed: known keys only, `as_of` and `source` given, each value of exactly a type its field
    keeps as is, dates as dates or YYYY-MM-DD, and a value or bounds as the model requires. None
    when any check fails: the caller validates it then (the same model, or the problem worded)."""
    if type(item) is not dict or "as_of" not in item or "source" not in item:
        return None
    fields = _FACT_TEMPLATE.copy()
    bounds = 0
    for key, v in item.items():
        kind = _FIELD_KIND.get(key) if type(key) is str else None
        if kind is None:
            return None
        if kind == _TEXT:
            if type(v) is not str:
                return None
            v = sys.intern(v)  # source ids and units repeat across a universe: one copy of each
        elif kind == _DATE:
            if v is not None or key == "as_of":
                t = type(v)
                day = _DATES.get(v) if t is str or t is dt.date else None
                if day is None:
                    day = _plain_date(v)
                    if day is None:
                        return None
                v = day
        elif kind == _VALUE:
            if v is not None and type(v) not in _SCALAR_TYPES:
                return None
        elif v is not None:
            if type(v) is not float and type(v) is not int:
                return None
            bounds += 1
        fields[key] = v
    if (fields["value"] is None) == (bounds == 0):  # neither, or both: the model's validator words it
        return None
    if bounds > 1 and ((fields["gt"] is not None and fields["gte"] is not None)
                       or (fields["lt"] is not None and fields["lte"] is not None)):
        return None
    fv = FactValue.__new__(FactValue)
    _set(fv, "__dict__", fields)
    _set(fv, "__pydantic_fields_set__", set(map(sys.intern, item)))  # the field names' own strings
    _set(fv, "__pydantic_extra__", None)
    _set(fv, "__pydantic_private__", None)
    return fv


_set = object.__setattr__


def _type_problem(fv: FactValue, spec: FactSpec) -> str:
    """'' when the value fits the catalog's declaration (type, bounds allowed, finite and in range)."""
    ftype = spec.type
    if fv.value is None:
        if ftype != "number":
            return "is given as a bound, but only numbers can be"
        if not spec.bounds:
            return "is given only as a bound, which the catalog does not allow for it (set bounds: true)"
        for b in (fv.gt, fv.gte, fv.lt, fv.lte):
            why = _number_problem(b, spec) if b is not None else ""
            if why:
                return f"has a bound that {why}"
        return ""
    v = fv.value
    if ftype == "number" and (isinstance(v, bool) or not isinstance(v, (int, float))):
        if isinstance(v, str) and _is_float(v):
            if _YAML_NUMBER.fullmatch(v):  # YAML would have read it as a number: it was written in quotes
                return f"must be a number, not the text {v!r} (written in quotes: write it without them)"
            if "e" in v.lower():  # YAML 1.1 reads 1e5 and 1.7e308 as text
                return f"must be a number, not {v!r} (YAML reads that as text: write the exponent as 1.0e+5)"
            return f"must be a finite number, not {v!r}"
        return f"must be a number, not {v!r}"
    if ftype == "bool" and not isinstance(v, bool):
        return f"must be true or false, not {v!r}"
    if ftype == "text" and not isinstance(v, str):
        return f"must be text, not {v!r}"
    if ftype == "date" and not isinstance(v, dt.date):
        return f"must be a date written YYYY-MM-DD, not {v!r}"
    if ftype != "date" and isinstance(v, dt.date):
        return f"must be {ftype}, not the date {v}"
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        why = _number_problem(v, spec)
        if why:
            return f"value {why}"
    return ""


def _number_problem(v: int | float, spec: FactSpec) -> str:
    """number_problem of a YAML number: an integer too large for a float is a problem too, not a crash."""
    try:
        x = float(v)
    except OverflowError:
        return f"{'-' if v < 0 else ''}1e+308 or more is beyond the largest number verdict accepts ({MAX_ABS_NUMBER:g})"
    return number_problem(x, spec.min, spec.max)


# What YAML 1.1 (PyYAML) reads as a number when it is not quoted: a text matching this was quoted.
_YAML_NUMBER = re.compile(r"[-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+][0-9]+)?|[-+]?(?:0|[1-9][0-9_]*|0[0-7_]+)")


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def check_formulas(catalog: Catalog, doc: SourceDoc, base: Loc = ("namespaces",)) -> list[Problem]:
    """Check the derived facts' formulas of a catalog (positions from `doc`) and remember them."""
    def where(path: str) -> tuple[Location, int]:
        loc: Loc = (*base, *path.split(".", 1), "formula")
        return doc.at(loc), doc.value_col_offset(loc)

    checked, problems = formulas.check(catalog, where)
    formulas.register(catalog, checked)
    return problems


def load_facts(root: Path, partial: bool = False, cache: ParseCache | None = None) -> FactBase:
    """Load facts/ (catalog, sources, commodities, sectors/, stocks/) or raise FactError with every problem.

    With `partial`, a stock whose own files are bad (malformed, unreadable, out of range) is left out
    and its problems are kept in `FactBase.skipped` and `skipped_files`: a screen reports it and goes
    on, and evaluating another symbol is unaffected; shared files must be sound. `cache`: parsed stock
    and price files from an earlier load (`ParseCache.default(root)`), or None to parse every file.
    """
    # A universe is millions of bars, each a few objects: the cyclic collector would walk them all again
    # and again as they are made (half the time of a warm load); none of them form cycles.
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load_facts(root, partial, cache)
    finally:
        if paused:
            gc.enable()


def _load_facts(root: Path, partial: bool, cache: ParseCache | None) -> FactBase:
    if not root.is_dir():
        raise LookupFailure([problem(display_path(root), 0, 0, "no-facts-dir",
                                     f"the facts directory '{display_path(root)}' does not exist.",
                                     "Pass --facts DIR pointing at a folder with catalog.yaml, sources.yaml, "
                                     "sectors/ and stocks/, or run from the project folder.")])
    problems: list[Problem] = []
    files: dict[str, bytes] = {}

    def doc_of(path: Path, required: bool = True) -> SourceDoc | None:
        if not path.exists() and not path.is_symlink():
            if required:
                problems.append(problem(display_path(path), 0, 0, "missing-file",
                                        f"'{display_path(path)}' is missing.",
                                        "Every facts directory needs catalog.yaml and sources.yaml."))
            return None
        content = read_file(path, display_path(path, root), problems)
        if content is None:
            return None
        files[str(path.relative_to(root))] = content
        return read_mapping(path, root, problems, content)

    catalog: Catalog | None = None
    cdoc = doc_of(root / CATALOG_FILE)
    if cdoc:
        catalog, errs = validate(Catalog, cdoc)
        problems.extend(errs)
        for ns, fields in (catalog.namespaces.items() if catalog else []):
            for name in fields:
                if not name.isidentifier() or "__" in name or not name.islower():
                    where = cdoc.key_at(("namespaces", ns, name))
                    problems.append(problem(where.file, where.line, where.col, "bad-fact-name",
                                            f"fact name '{name}' must be lower_snake_case without '__'.", ""))
        if catalog is not None:
            problems.extend(check_formulas(catalog, cdoc))
    sources: dict[str, Source] = {}
    sdoc = doc_of(root / SOURCES_FILE)
    if sdoc:
        slist, errs = validate(SourceList, sdoc)
        problems.extend(errs)
        sources = slist.sources if slist else {}

    commodities: dict[str, list[FactValue]] = {}
    commodity_sectors: frozenset[str] | None = None
    mdoc = doc_of(root / COMMODITIES_FILE, required=False)
    if mdoc:
        cf, errs = validate(CommodityFile, mdoc, data={k: v for k, v in mdoc.data.items() if k != "facts"})
        problems.extend(errs)
        commodities = fact_entries(mdoc, mdoc.data.get("facts"), "commodity", catalog, sources, problems)
        if cf is not None and cf.sectors is not None:
            commodity_sectors = frozenset(cf.sectors)

    sectors: dict[str, SectorFacts] = {}
    for path in sorted((root / "sectors").glob("*.yaml")):
        sd = doc_of(path)
        if not sd:
            continue
        sf, errs = validate(SectorFile, sd, data={**sd.data, "facts": {}})
        problems.extend(errs)
        facts = fact_entries(sd, sd.data.get("facts"), "sector", catalog, sources, problems)
        if sf:
            sectors[sf.sector] = SectorFacts(sf, sd.path, facts)

    if mdoc and commodity_sectors is not None:
        for i, name in enumerate(mdoc.data.get("sectors") or []):
            if name not in sectors:
                where = mdoc.at(("sectors", i))
                problems.append(problem(where.file, where.line, where.col, "unknown-sector",
                                        f"commodities.yaml names sector '{name}', which has no file in sectors/.",
                                        did_you_mean(str(name), list(sectors)) or
                                        "Name the `sector:` id of a file in sectors/."))

    stocks: dict[str, StockFacts] = {}
    owned: dict[str, list[Problem]] = {}  # stock file -> the problems found in it or its prices

    def own(key: str, start: int) -> None:
        if len(problems) > start:
            owned.setdefault(key, []).extend(problems[start:])
            del problems[start:]

    stocks_dir = root / "stocks"
    shown_dir = display_path(stocks_dir, root)  # each file's display_path, without a Path per file
    for path in sorted(stocks_dir.glob("*.yaml")):
        start = len(problems)
        shown = os.path.join(shown_dir, path.name)
        try:
            _load_stock(path, shown, os.path.join("stocks", path.name), catalog, sources, sectors, stocks,
                        problems, root, files, cache)
        finally:
            own(shown, start)

    base_as_of = None
    bdoc = doc_of(root / BASE_FILE, required=False)
    if bdoc:
        bf, errs = validate(FactBaseFile, bdoc)
        problems.extend(errs)
        base_as_of = bf.as_of if bf else None

    for s in stocks.values():
        for i, table in enumerate(s.file.indicators):
            if table.source not in sources:
                doc = s.doc if s.doc and s.doc.marks else read_mapping(root / Path(s.path).relative_to(root.name), root,
                                                                 []) or s.doc
                where = doc.at(("indicators", i, "source")) if doc else Location(s.path)
                start = len(problems)
                problems.append(problem(where.file, where.line, where.col, "unknown-source",
                                        f"indicator source '{table.source}' is not listed in facts/{SOURCES_FILE}.",
                                        did_you_mean(table.source, list(sources))))
                own(s.path, start)
        spec = s.file.prices
        if spec is None:
            continue
        start = len(problems)
        for seg in spec.segments:
            if seg.source not in sources and s.doc is not None:
                doc = s.doc if s.doc.marks else (
                    read_mapping(root / Path(s.path).relative_to(root.name), root, []) or s.doc)
                where = doc.at(("prices", "segments"))
                problems.append(problem(where.file, where.line, where.col, "unknown-source",
                                        f"price source '{seg.source}' is not listed in facts/{SOURCES_FILE}.",
                                        did_you_mean(seg.source, list(sources))))
            seg_path = root / seg.file
            with contextlib.suppress(OSError):  # load_series reports it
                files[seg.file] = seg_path.read_bytes()
        try:
            s.series = load_series(s.file.symbol, spec, root, root.name, s.path, cache)
        except FactError as exc:
            problems.extend(exc.problems)
        own(s.path, start)
    if cache is not None:
        cache.save()
    # Trading days: the exchange calendar; past its last day, the dates the series themselves have there.
    calendar = exchange_calendar(root)
    beyond = frozenset(d for s in stocks.values() if s.series for d in s.series.dates_after(calendar.last))
    for s in stocks.values():
        if s.series:
            start = len(problems)
            problems.extend(check_gaps(s.series, calendar, s.path, beyond))
            own(s.path, start)

    skipped: list[Problem] = []
    if partial and not problems:
        for key, ps in owned.items():
            skipped.extend(ps)
            for sym in [sym for sym, s in stocks.items() if s.path == key]:
                own_prices = stocks[sym].file.prices
                kept = {seg.file for other in stocks.values() if other.path != key and other.file.prices
                        for seg in other.file.prices.segments}
                for seg in own_prices.segments if own_prices else []:
                    if seg.file not in kept:
                        files.pop(seg.file, None)
                del stocks[sym]
            with contextlib.suppress(ValueError):  # the snapshot holds only the files used
                files.pop(str(Path(key).relative_to(root.name)), None)
    else:
        problems.extend(p for ps in owned.values() for p in ps)
    if problems:
        raise FactError(sorted(problems, key=lambda p: (p.loc.file, p.loc.line, p.loc.col)))
    assert catalog is not None
    for s in stocks.values():
        s.doc = None  # positions were only needed to report problems; free them (a universe is large)
    sources.setdefault(formulas.DERIVED_SOURCE, Source(title="Computed by verdict from the symbol's daily price "
                                                             "history", publisher="verdict (derived from prices)"))
    sources.setdefault(formulas.FORMULA_SOURCE, Source(title="Computed by verdict from other facts by a formula of "
                                                             "the fact catalog", publisher="verdict (formula)"))
    skipped_files = {key: ps for key, ps in owned.items()} if partial else {}
    return FactBase(root, catalog, sources, stocks, sectors, commodities, files, base_as_of, skipped, skipped_files,
                    commodity_sectors)


# --------------------------------------------------------------------------------- rules


@dataclass
class LoadedRule:
    """A checked rule: its model, where it is, its parsed condition and value expressions."""

    rule: Rule
    pack: str
    file: str
    line: int
    cond: expr.Node
    values: dict[str, expr.Node]  # "entry.0.low" -> expression
    templates: dict[str, list[str | expr.Placeholder]]  # "warning.0" -> parts
    when_at: Location = field(default_factory=Location)  # where the `when` text starts
    then_at: Location = field(default_factory=Location)
    evidence: str | None = None  # its family of evidence (the rule's own, else its pack's)
    at: Location = field(default_factory=Location)  # where the rule starts

    @property
    def id(self) -> str:
        return self.rule.id

    @cached_property
    def paths(self) -> list[str]:
        """Fact paths the condition reads (computed once; the trace asks for them per symbol)."""
        return expr.fact_paths(self.cond)

    @cached_property
    def reads_signals(self) -> bool:
        return bool(expr.signal_refs(self.cond))

    @cached_property
    def emitted(self) -> tuple[tuple[str, float], ...]:
        """(name, score) of each signal it emits."""
        return tuple((s.name, float(s.score)) for s in self.rule.then.signals())

    @cached_property
    def has_outputs(self) -> bool:
        """Whether firing it sets a target, an entry, a warning or a rating override (beyond signals)."""
        then = self.rule.then
        return bool(then.target or then.rating or then.entries() or then.warnings())

    @cached_property
    def salience_key(self) -> tuple[int, str, int]:
        """Order of precedence among fired rules: salience, then file and line."""
        return (-self.rule.salience, self.file, self.line)

    @cached_property
    def then_paths(self) -> list[str]:
        """Fact paths its messages, entry and target values read."""
        nodes = list(self.values.values()) + [p.node for parts in self.templates.values() for p in parts
                                              if isinstance(p, expr.Placeholder)]
        return list(dict.fromkeys(path for n in nodes for path in expr.fact_paths(n)))


@dataclass
class LoadedValuation:
    """A checked valuation method of a pack: the fact paths it reads, where it is."""

    spec: ValuationMethod
    pack: str
    file: str
    line: int
    evidence: str | None
    at: Location = field(default_factory=Location)

    @property
    def id(self) -> str:
        return self.spec.id

    @cached_property
    def paths(self) -> list[str]:
        """Every fact path it reads: its inputs, its price facts and its reference target."""
        m = self.spec
        out = [s.value for s in m.scenarios] + [s.weight for s in m.scenarios if isinstance(s.weight, str)]
        out += [p for p in (m.eps, m.pe_low, m.pe_high) if isinstance(p, str)]
        out += list(m.price)
        if m.reference:
            out += [m.reference.low, m.reference.high]
        return list(dict.fromkeys(out))


@dataclass
class RuleBook:
    """All packs of a rules directory plus the policy, checked against one fact catalog."""

    root: Path
    policy: Policy
    rules: list[LoadedRule]
    files: dict[str, bytes]
    valuations: list[LoadedValuation] = field(default_factory=list)  # by precedence (salience, file, line)
    catalog: Catalog | None = None  # the fact catalog plus the derived facts the packs declare

    def by_id(self) -> dict[str, LoadedRule]:
        return {r.id: r for r in self.rules}

    @property
    def digest(self) -> str:
        return digest_files(self.files)


def digest_files(files: dict[str, bytes]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(files[name]).digest())
    return h.hexdigest()


def _pack_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.yaml") if p.name != POLICY_FILE and "tests" not in p.relative_to(
        root).parts)


def load_rules(root: Path, catalog: Catalog) -> RuleBook:
    """Load every pack under `root` and its policy.yaml; raise RuleError listing every problem."""
    book, problems = load_rules_partial(root, catalog)
    if problems or book is None:
        raise RuleError(problems)
    return book


def load_rules_partial(root: Path, catalog: Catalog) -> tuple[RuleBook | None, list[Problem]]:
    """Every problem, and a book of the rules that did check out (None without a valid policy).

    `verdict rules check` lints the good rules even when others are broken, so one run reports all.
    """
    if not root.is_dir():
        raise LookupFailure([problem(display_path(root), 0, 0, "no-rules-dir",
                                     f"the rules directory '{display_path(root)}' does not exist.",
                                     "Pass --rules DIR pointing at a folder of YAML rule packs and policy.yaml.")])
    problems: list[Problem] = []
    files: dict[str, bytes] = {}
    policy: Policy | None = None
    ppath = root / POLICY_FILE
    if not ppath.is_file():
        problems.append(problem(display_path(ppath, root), 0, 0, "missing-file",
                                f"'{display_path(ppath, root)}' is missing.",
                                "The rating scale and score bands live there; copy the bundled one."))
    else:
        pbytes = read_file(ppath, display_path(ppath, root), problems)
        pdoc = read_mapping(ppath, root, problems, pbytes) if pbytes is not None else None
        if pbytes is not None:
            files[POLICY_FILE] = pbytes
        if pdoc:
            policy, errs = validate(Policy, pdoc)
            problems.extend(errs)

    raw: list[tuple[Pack, SourceDoc, list[tuple[int, Rule, bool]]]] = []
    partial: list[tuple[SourceDoc, int, str, Any]] = []  # rules too broken to salvage: (doc, index, id, when)
    for path in _pack_files(root):
        content = read_file(path, display_path(path, root), problems)
        if content is None:
            continue
        files[str(path.relative_to(root))] = content
        doc = read_mapping(path, root, problems, content)
        if not doc:
            continue
        # The header and each rule are validated on their own, so one bad rule hides no other.
        items = doc.data.get("rules")
        header, errs = validate(Pack, doc, data={**doc.data, "rules": []})
        problems.extend(errs)
        if not isinstance(items, list):
            where = doc.key_at(("rules",)) if "rules" in doc.data else doc.at(())
            problems.append(problem(where.file, where.line, where.col, "no-rules",
                                    "a pack needs `rules:`, a list of rules.", "Add `rules:` with at least one rule."))
            continue
        good: list[tuple[int, Rule, bool]] = []  # (index, rule, valid): an invalid one is still checked
        for i, item in enumerate(items):
            rule, errs = validate(Rule, doc, ("rules", i), item)
            rid: str = item["id"] if isinstance(item, dict) and isinstance(item.get("id"), str) else ""
            problems.extend(_at(p, rid) for p in errs)
            if rule is not None:
                good.append((i, rule, True))
                continue
            # One run reports everything: a rule whose only fault is an unknown key (`salence:`) is still
            # checked for a duplicate id, unknown facts and types; it just does not load.
            salvaged = _salvage(item, Rule)
            if salvaged is not None:
                good.append((i, salvaged, False))
            elif rid:
                partial.append((doc, i, rid, item.get("when")))
        if header is not None:
            raw.append((header, doc, good))

    catalog = _pack_facts(raw, catalog, problems)  # the derived facts packs declare join the catalog
    valuations = _check_valuations(raw, catalog, policy, problems)
    # Signals are declared by being emitted: collect them before type-checking any `when`.
    signals = {s.name for _, _, good in raw for _, r, _ in good for s in r.then.signals()}
    env = expr.TypeEnv(catalog, signals)
    value_env = expr.TypeEnv(catalog, signals, allow_signals=False)
    rules: list[LoadedRule] = []
    seen_ids: dict[str, str] = {}
    locs: dict[str, tuple[SourceDoc, Loc]] = {}
    for pack, doc, good in raw:
        for i, r, valid in good:
            loc: Loc = ("rules", i)
            where = doc.at(loc)
            duplicate = r.id in seen_ids
            if duplicate:  # reported, and its condition still checked below, so one run says everything
                problems.append(problem(where.file, where.line, where.col, "duplicate-id",
                                        f"rule id '{r.id}' is already used at {seen_ids[r.id]}.",
                                        "Rule ids must be unique across all packs.", r.id))
            else:
                seen_ids[r.id] = f"{where.file}:{where.line}"
            if not r.id.startswith(pack.pack + "."):
                idw = doc.at((*loc, "id"))
                problems.append(problem(idw.file, idw.line, idw.col, "id-prefix",
                                        f"rule id '{r.id}' should start with its pack name '{pack.pack}.'.",
                                        f"Rename it to '{pack.pack}.{r.id.partition('.')[2]}'.", r.id))
            loaded = _check_rule(r, pack.pack, doc, loc, env, value_env, problems)
            if loaded and valid and not duplicate:
                loaded.evidence = r.evidence or pack.evidence
                loaded.at = doc.at(loc)
                if r.evidence is not None:
                    _check_family(r.evidence, policy, doc, (*loc, "evidence"), problems, r.id)
                rules.append(loaded)
                locs[r.id] = (doc, loc)
    for doc, i, rid, when in partial:
        where = doc.at(("rules", i))
        if rid in seen_ids:
            problems.append(problem(where.file, where.line, where.col, "duplicate-id",
                                    f"rule id '{rid}' is already used at {seen_ids[rid]}.",
                                    "Rule ids must be unique across all packs.", rid))
        else:
            seen_ids[rid] = f"{where.file}:{where.line}"
        if isinstance(when, str):
            wloc: Loc = ("rules", i, "when")
            try:
                expr.check_condition(when, env)
            except expr.ExprError as exc:
                problems.append(_at(expr.to_problem(exc, doc.at(wloc), doc.value_col_offset(wloc), when), rid))
    if policy is not None:
        names = policy.scale.names()
        for lr in rules:
            if lr.rule.then.rating and lr.rule.then.rating.value not in names:
                doc, loc = locs[lr.id]
                where = doc.at((*loc, "then", "rating", "value"))
                problems.append(problem(where.file, where.line, where.col, "unknown-rating",
                                        f"rating '{lr.rule.then.rating.value}' is not on the policy's scale.",
                                        did_you_mean(lr.rule.then.rating.value, names) or
                                        f"The scale is: {', '.join(names)}."))
    taken = set(seen_ids)
    for v in valuations:
        if v.id in taken:
            problems.append(problem(v.at.file, v.at.line, v.at.col, "duplicate-id",
                                    f"valuation id '{v.id}' is already used by a rule or another valuation.",
                                    "Ids must be unique across all packs.", v.id))
        taken.add(v.id)
    return (RuleBook(root, policy, rules, files, valuations, catalog) if policy is not None else None), problems


def _check_family(name: str, policy: Policy | None, doc: SourceDoc, loc: Loc, problems: list[Problem],
                  rule_id: str = "") -> None:
    if policy is None or not policy.evidence or name in policy.evidence:
        return
    where = doc.at(loc)
    problems.append(problem(where.file, where.line, where.col, "unknown-evidence",
                            f"evidence family '{name}' is not declared in the policy.",
                            did_you_mean(name, list(policy.evidence)) or
                            f"Declared families: {', '.join(policy.evidence)}.", rule_id))


def _check_valuations(raw: list[tuple[Pack, SourceDoc, list[Any]]], catalog: Catalog,
                      policy: Policy | None, problems: list[Problem]) -> list[LoadedValuation]:
    """Each pack's valuation methods: ids, evidence families, and every fact path they read (numbers)."""
    out: list[LoadedValuation] = []
    for pack, doc, _ in raw:
        if pack.evidence is not None:
            _check_family(pack.evidence, policy, doc, ("evidence",), problems)
        many = isinstance(pack.valuation, list)
        for i, m in enumerate(pack.valuations()):
            loc: Loc = ("valuation", i) if many else ("valuation",)
            where = doc.at(loc)
            if not m.id.startswith(pack.pack + "."):
                idw = doc.at((*loc, "id"))
                problems.append(problem(idw.file, idw.line, idw.col, "id-prefix",
                                        f"valuation id '{m.id}' should start with its pack name '{pack.pack}.'.",
                                        f"Rename it to '{pack.pack}.{m.id.partition('.')[2]}'.", m.id))
            lv = LoadedValuation(m, pack.pack, doc.path, where.line, pack.evidence, where)
            bad = False
            for key, path in _valuation_refs(m):
                spec = catalog.spec(path)
                if spec is not None and spec.type == "number":
                    continue
                kw = doc.at((*loc, *key))
                text = f"unknown fact path '{path}'." if spec is None else f"'{path}' is {spec.type}, not a number."
                problems.append(problem(kw.file, kw.line, kw.col, "unknown-fact" if spec is None else "type", text,
                                        did_you_mean(path, catalog.paths()) if spec is None else
                                        "A valuation reads numbers only.", m.id))
                bad = True
            if not bad:
                out.append(lv)
    return sorted(out, key=lambda v: (-v.spec.salience, v.file, v.line))


def _valuation_refs(m: ValuationMethod) -> list[tuple[Loc, str]]:
    refs: list[tuple[Loc, str]] = []
    for i, sc in enumerate(m.scenarios):
        refs.append((("scenarios", i, "value"), sc.value))
        if isinstance(sc.weight, str):
            refs.append((("scenarios", i, "weight"), sc.weight))
    for key in ("eps", "pe_low", "pe_high"):
        v = getattr(m, key)
        if isinstance(v, str):
            refs.append(((key,), v))
    refs += [(("price", i), p) for i, p in enumerate(m.price)]
    if m.reference:
        refs += [(("reference", "low"), m.reference.low), (("reference", "high"), m.reference.high)]
    return refs


def _pack_facts(raw: list[tuple[Pack, SourceDoc, Any]], catalog: Catalog, problems: list[Problem]) -> Catalog:
    """The catalog with the derived facts the packs declare (`derived:`), their formulas checked.

    A pack may only add facts, each with a formula; the catalog's own formulas were checked with the
    facts, so only the packs' are reported here."""
    from .model import FACT_NAMESPACES

    declared: dict[str, tuple[FactSpec, SourceDoc]] = {}
    for pack, doc, _ in raw:
        for path, spec in pack.derived.items():
            where = doc.key_at(("derived", path))
            ns, _, name = path.partition(".")
            why = ""
            if ns not in FACT_NAMESPACES or not name.isidentifier() or "__" in name or not name.islower():
                why = (f"'{path}' is not a fact path: write NAMESPACE.name with a namespace of "
                       f"{', '.join(FACT_NAMESPACES)} and a lower_snake_case name without '__'.")
            elif catalog.spec(path) is not None:
                why = f"'{path}' is already declared in the fact catalog; a pack may only add facts."
            elif path in declared:
                why = f"'{path}' is also declared in {declared[path][1].path}."
            elif spec.formula is None:
                why = f"'{path}' has no formula: a pack declares derived facts only (stated facts go in the catalog)."
            if why:
                problems.append(problem(where.file, where.line, where.col, "pack-fact", why))
                continue
            declared[path] = (spec, doc)
    if not declared:
        return catalog
    data = catalog.model_dump()
    for path, (spec, _) in declared.items():
        ns, name = path.split(".", 1)
        data["namespaces"].setdefault(ns, {})[name] = spec.model_dump()
    extended = Catalog.model_validate(data)

    def located_in_pack(path: str) -> tuple[Location, int]:
        if path not in declared:
            return Location(), 0
        doc = declared[path][1]
        loc: Loc = ("derived", path, "formula")
        return doc.at(loc), doc.value_col_offset(loc)

    checked, errs = formulas.check(extended, located_in_pack)
    problems.extend(p for p in errs if p.loc.file)
    located = formulas.of_catalog(catalog)
    formulas.register(extended, formulas.Formulas(
        {**located.items, **{p: f for p, f in checked.items.items() if p in declared}}))
    return extended


def _salvage(item: Any, model: type[M]) -> M | None:
    """The item with its unknown keys dropped, if that is all that is wrong with it (else None): so the
    rest of it is still checked in the same run."""
    import copy

    if not isinstance(item, dict):
        return None
    try:
        return model.model_validate(item)
    except ValidationError as exc:
        errors = exc.errors()
    if any(e["type"] != "extra_forbidden" for e in errors):
        return None
    data = copy.deepcopy(item)
    for e in errors:
        loc, fits = _clean_loc(item, tuple(e["loc"]))
        if not fits or not loc:
            continue
        parent: Any = data
        for part in loc[:-1]:
            if isinstance(parent, dict):
                parent = parent.get(part)
            elif isinstance(parent, list) and isinstance(part, int) and part < len(parent):
                parent = parent[part]
            else:
                parent = None
        if isinstance(parent, dict):
            parent.pop(loc[-1], None)
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


def _check_rule(r: Rule, pack: str, doc: SourceDoc, loc: Loc, env: expr.TypeEnv, value_env: expr.TypeEnv,
                problems: list[Problem]) -> LoadedRule | None:
    ok = True
    wloc = (*loc, "when")
    try:
        cond = expr.check_condition(r.when, env)
    except expr.ExprError as exc:
        problems.append(_at(expr.to_problem(exc, doc.at(wloc), doc.value_col_offset(wloc), r.when), r.id))
        ok = False
    values: dict[str, expr.Node] = {}
    templates: dict[str, list[str | expr.Placeholder]] = {}

    def value(key: str, text: Any, path: Loc) -> None:
        nonlocal ok
        if text is None:
            return
        try:
            values[key] = expr.check_value(text, value_env)
        except expr.ExprError as exc:
            problems.append(_at(expr.to_problem(exc, doc.at(path), doc.value_col_offset(path), text), r.id))
            ok = False

    def template(key: str, text: str, path: Loc) -> None:
        nonlocal ok
        if not text:
            return
        try:
            parts = expr.parse_template(text)
            for part in parts:
                if isinstance(part, expr.Placeholder):
                    expr.type_of(part.node, env)
            templates[key] = parts
        except expr.ExprError as exc:
            base = doc.at(path)
            exc.pos = expr.Pos(1, 0)
            p = expr.to_problem(exc, base, doc.value_col_offset(path), text)
            problems.append(_at(p, r.id, prefix="in the message template: "))
            ok = False

    then = r.then
    tloc = (*loc, "then")
    def item_loc(kind: str, i: int) -> Loc:
        return (*tloc, kind) if not isinstance(getattr(then, kind), list) else (*tloc, kind, i)

    for i, w in enumerate(then.warnings()):
        template(f"warning.{i}", w.message, (*item_loc("warning", i), "message"))
    for i, e in enumerate(then.entries()):
        iloc = item_loc("entry", i)
        value(f"entry.{i}.low", e.low, (*iloc, "low"))
        value(f"entry.{i}.high", e.high, (*iloc, "high"))
        template(f"entry.{i}.note", e.note, (*iloc, "note"))
    for i, s in enumerate(then.signals()):
        template(f"signal.{i}.note", s.note, (*item_loc("signal", i), "note"))
    if then.target:
        value("target.low", then.target.low, (*tloc, "target", "low"))
        value("target.high", then.target.high, (*tloc, "target", "high"))
        template("target.note", then.target.note, (*tloc, "target", "note"))
    if then.rating:
        template("rating.reason", then.rating.reason, (*tloc, "rating", "reason"))
    if not ok:
        return None
    line = doc.at(loc).line
    when_at = doc.at(wloc).shifted(doc.value_col_offset(wloc))
    return LoadedRule(r, pack, doc.path, line, cond, values, templates, when_at, doc.at(tloc))


def _at(p: Problem, rule_id: str, prefix: str = "") -> Problem:
    return Problem(p.loc, p.code, prefix + p.message, p.hint, p.severity, rule_id, p.input)
