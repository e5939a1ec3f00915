"""The benchmark a backtest measures excess returns against: a real index, or an equal-weight index.

A real index comes from `facts/benchmarks/*.yaml` (its daily levels in a CSV beside it and the
source they were copied from) or from a CSV the user names. Without one, the benchmark is the
equal-weight index of the universe itself (every stock that could be priced on the rating date,
bought and held over the same window), and every output says so: it is not the CSI 300.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .errors import LookupFailure, Problem, problem
from .load import display_path
from .model import BenchmarkColumns, BenchmarkFile

EQUAL_WEIGHT = "equal-weight"


@dataclass
class Benchmark:
    name: str
    kind: str  # "index" or "equal-weight"
    description: str  # one line, printed with every output
    source: dict[str, str] = field(default_factory=dict)
    dates: list[dt.date] = field(default_factory=list)
    opens: list[float] | None = None
    closes: list[float] = field(default_factory=list)

    @property
    def is_index(self) -> bool:
        return self.kind == "index"


def equal_weight(count: int) -> Benchmark:
    return Benchmark(f"equal-weight index of the universe ({count} stocks)", EQUAL_WEIGHT,
                     "Equal-weight index of the backtested universe (not a published index): on each rating date, "
                     "every stock that could be priced, bought at the next open and held for the same window.")


def find(facts_dir: Path, wanted: str) -> Path | None:
    """The benchmark file in FACTS_DIR/benchmarks whose name is `wanted` (the policy's benchmark)."""
    folder = facts_dir / "benchmarks"
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(data, dict) and str(data.get("name", "")).strip().lower() == wanted.strip().lower():
            return path
    return None


def choose(facts_dir: Path, policy_benchmark: str, choice: str | Path | None = None) -> Benchmark | None:
    """What `--benchmark` names: a CSV or benchmarks/*.yaml file, `equal-weight` (None: the universe's own
    index), or by default the policy's benchmark if FACTS_DIR/benchmarks has it (else equal-weight)."""
    if choice is not None:
        return None if str(choice).strip().lower() == EQUAL_WEIGHT else load(Path(choice))
    found = find(facts_dir, policy_benchmark)
    return load(found) if found is not None else None


def load(path: Path) -> Benchmark:
    """A benchmark from its YAML description, or straight from a CSV (columns date, close and optionally open)."""
    shown = display_path(path)
    if not path.is_file():
        raise LookupFailure([problem(shown, 0, 0, "no-benchmark", f"the benchmark file '{shown}' does not exist.",
                                     "Give a CSV with date and close columns (open too, if published), a "
                                     "benchmarks/*.yaml describing one, or `equal-weight`.")])
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise LookupFailure([problem(shown, 0, 0, "bad-benchmark", f"not valid YAML ({exc}).",
                                         "See facts/benchmarks/csi300.yaml for the format.")]) from None
        try:
            spec = BenchmarkFile.model_validate(data)
        except ValueError as exc:
            first = str(exc).splitlines()
            raise LookupFailure([problem(shown, 0, 0, "bad-benchmark", "; ".join(first[:3]) + ".",
                                         "See facts/benchmarks/csi300.yaml for the format.")]) from None
        csv_path = path.parent / spec.file
        dates, opens, closes = read_levels(csv_path, spec.columns)
        what = f"{spec.name}" + (f" ({spec.code})" if spec.code else "")
        origin = spec.source.get("publisher", "") or spec.source.get("repository", "")
        return Benchmark(spec.name, "index", f"{what}, daily levels from {origin}, {dates[0]} .. {dates[-1]}",
                         dict(spec.source), dates, opens, closes)
    dates, opens, closes = read_levels(path, BenchmarkColumns())
    return Benchmark(path.stem, "index", f"{path.stem} (from {shown}), {dates[0]} .. {dates[-1]}",
                     {"file": shown}, dates, opens, closes)


def read_levels(path: Path, columns: BenchmarkColumns) -> tuple[list[dt.date], list[float] | None, list[float]]:
    """Dates (ascending, distinct), opens (None if the file has none) and closes, every bad row named."""
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise LookupFailure([problem(shown, 0, 0, "no-benchmark", f"cannot read the benchmark levels: {exc.strerror}.",
                                     "Fix `file:` in the benchmark's YAML.")]) from None
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [c.strip().lower() for c in next(reader, [])]
    need = [columns.date, columns.close]
    missing = [c for c in need if c.lower() not in header]
    if missing:
        raise LookupFailure([problem(shown, 1, 1, "benchmark-columns", f"missing column(s): {', '.join(missing)}.",
                                     "A benchmark CSV needs a date and a close column (and open, if published).")])
    i_date, i_close = header.index(columns.date.lower()), header.index(columns.close.lower())
    i_open = header.index(columns.open.lower()) if columns.open and columns.open.lower() in header else None
    dates: list[dt.date] = []
    opens: list[float] = []
    closes: list[float] = []
    problems: list[Problem] = []
    for lineno, row in enumerate(reader, start=2):
        if not row:
            continue
        try:
            raw = row[i_date].strip()
            day = dt.date(int(raw[:4]), int(raw[4:6]), int(raw[6:8])) if raw.isdigit() and len(raw) == 8 \
                else dt.date.fromisoformat(raw)
            close = float(row[i_close])
            open_ = float(row[i_open]) if i_open is not None else close
        except (ValueError, IndexError) as exc:
            problems.append(problem(shown, lineno, 1, "benchmark-row", f"unreadable row ({exc}).",
                                    "Dates as YYYY-MM-DD or YYYYMMDD, levels as numbers."))
            continue
        if dates and day <= dates[-1]:
            problems.append(problem(shown, lineno, 1, "benchmark-row",
                                    f"date {day} is not after the previous row's {dates[-1]}.",
                                    "Rows must ascend by date without repeats."))
            continue
        if close <= 0 or open_ <= 0:
            problems.append(problem(shown, lineno, 1, "benchmark-row", "levels must be positive.", ""))
            continue
        dates.append(day)
        opens.append(open_)
        closes.append(close)
    if problems:
        raise LookupFailure(problems[:20])
    if not dates:
        raise LookupFailure([problem(shown, 0, 0, "benchmark-empty", "the benchmark file has no rows.", "")])
    return dates, (opens if i_open is not None else None), closes
