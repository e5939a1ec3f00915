"""Price-history functions of derived facts, computed once over a symbol's whole series.

A formula such as `avg(volume, 20) / avg(volume, 60)` is computed over every bar of the symbol's
daily series the first time any date asks for it and kept (per symbol, per formula text), so a
backtest of 200 dates costs one computation, not 200. Every function here is causal: its value on
bar i reads bars 0..i only, so bar i of the whole-series result equals the last value computed on
the series cut at bar i. Slicing after computing is therefore exact, and EMA seeds stay on the first
bar as the Chinese terminals put them (never slice first: see engine/indicators.py).

Values are per bar: a float, a bool, or None where the function has no value yet (a window longer
than the bars so far) or cannot have one (a division by zero). Nothing here raises on data.
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from . import expr
from . import indicators as ind
from .prices import PriceSeries

SERIES = ("open", "high", "low", "close", "volume", "amount")
Values = list[Any]  # one value per bar: float, bool or None


@dataclass(frozen=True)
class Param:
    name: str
    default: float | None  # None: the argument is required
    low: float
    high: float
    integer: bool = True


@dataclass(frozen=True)
class Function:
    """A price-history function: `inputs` leading series arguments, then literal parameters."""

    name: str
    inputs: int
    params: tuple[Param, ...]
    result: str  # "number" | "bool"
    recursive: bool  # EMA/SMA-seeded: its value depends on how much history precedes it
    describe: Callable[[list[float]], str]  # a text with {x} (and {y}) for the input series
    warmup: Callable[[list[float]], int]  # bars after its inputs' first value before its own first value
    run: Callable[[list[Values], list[float], SymbolSeries], Values]
    # its value on one bar, equal to run(...)[i], for functions whose bars are each worked out from one
    # window alone (a standard deviation, a high or low): an evaluation reading one bar works out one window
    bar: Callable[[list[Values], list[float], SymbolSeries, int], Any] | None = None


def _i(x: float) -> int:
    return int(x)


def _g(x: float) -> str:
    return f"{x:g}"


# ----------------------------------------------------------------------------------- primitives


def _dense(xs: Values) -> bool:
    return None not in xs


def _window(xs: Values, n: int, fn: Callable[[Sequence[float]], float]) -> Values:
    """fn over each full window of n bars; None while fewer bars exist or a value in the window is None."""
    out: Values = [None] * len(xs)
    for i in range(n - 1, len(xs)):
        win = xs[i - n + 1:i + 1]
        if None not in win:
            out[i] = fn(win)
    return out


def _recursive(xs: Values, step: Callable[[float, float], float], seed: float | None = None) -> Values:
    """Y = step(X, Y') from the first value of X (seeded with it, or with `seed`); a None input gives a
    None output and the recursion carries on from the last value."""
    out: Values = []
    prev: float | None = None
    for x in xs:
        if x is None:
            out.append(None)
            continue
        prev = (step(x, seed) if seed is not None else x) if prev is None else step(x, prev)
        out.append(prev)
    return out


def ma(xs: Values, n: int) -> Values:
    return ind.ma(xs, n) if _dense(xs) else _window(xs, n, lambda w: sum(w) / n)


def ema(xs: Values, n: int) -> Values:
    return ind.ema(xs, n) if _dense(xs) else _recursive(xs, lambda x, y: (2 * x + (n - 1) * y) / (n + 1))


def sma(xs: Values, n: int, m: int) -> Values:
    return ind.sma_cn(xs, n, m) if _dense(xs) else _recursive(xs, lambda x, y: (m * x + (n - m) * y) / n)


def std(xs: Values, n: int, ddof: int) -> Values:
    if _dense(xs):
        return ind.std(xs, n, ddof)

    def sd(w: Sequence[float]) -> float:
        mean = sum(w) / n
        return math.sqrt(sum((v - mean) ** 2 for v in w) / (n - ddof))

    return _window(xs, n, sd)


def std_at(xs: Values, n: int, ddof: int, i: int) -> float | None:
    """`std(xs, n, ddof)[i]`, from the one window it reads (the same arithmetic, window by window)."""
    if i < n - 1:
        return None
    w = [v for v in xs[i - n + 1:i + 1] if v is not None]
    if len(w) < n:
        return None
    mean = sum(w) / n
    return math.sqrt(sum((v - mean) ** 2 for v in w) / (n - ddof))


def volatility_at(xs: Values, n: int, periods: float, i: int) -> float | None:
    """`volatility(xs, n, periods)[i]`: the n returns it reads, worked out as change_pct does."""
    if i < n:
        return None
    returns = [None if a is None or b is None or b == 0 else (a / b - 1) * 100
               for a, b in zip(xs[i - n + 1:i + 1], xs[i - n:i], strict=True)]
    v = std_at(returns, n, 1, n - 1)
    return None if v is None else v * math.sqrt(periods)


def extreme(xs: Values, n: int, highest: bool) -> Values:
    """Highest (lowest) of the last n bars: a monotonic deque, O(bars); None until n bars exist."""
    out: Values = [None] * len(xs)
    window: deque[int] = deque()
    last_none = -1
    for i, x in enumerate(xs):
        if x is None:
            last_none = i
            window.clear()
            continue
        while window and ((xs[window[-1]] <= x) if highest else (xs[window[-1]] >= x)):
            window.pop()
        window.append(i)
        if window[0] <= i - n:
            window.popleft()
        if i >= n - 1 and last_none <= i - n:
            out[i] = xs[window[0]]
    return out


def extreme_days(xs: Values, dates: Sequence[dt.date], days: int, highest: bool) -> Values:
    """Highest (lowest) over the bars of the last `days` calendar days (as '52-week high' is read)."""
    out: Values = [None] * len(xs)
    window: deque[int] = deque()
    for i, x in enumerate(xs):
        if x is not None:
            while window and ((xs[window[-1]] <= x) if highest else (xs[window[-1]] >= x)):
                window.pop()
            window.append(i)
        start = dates[i] - dt.timedelta(days=days)
        while window and dates[window[0]] <= start:
            window.popleft()
        out[i] = xs[window[0]] if window else None
    return out


def _pick(values: Iterable[float | None], highest: bool) -> float | None:
    """The highest (lowest) of `values`, Nones skipped; of equal ones the last, as the deques keep it."""
    best: float | None = None
    for v in values:
        if v is not None and (best is None or (v >= best if highest else v <= best)):
            best = v
    return best


def extreme_at(xs: Values, n: int, highest: bool, i: int) -> float | None:
    """`extreme(xs, n, highest)[i]` from bar i's window alone."""
    if i < n - 1:
        return None
    w = xs[i - n + 1:i + 1]
    return None if None in w else _pick(w, highest)


def extreme_days_at(xs: Values, dates: Sequence[dt.date], days: int, highest: bool, i: int) -> float | None:
    """`extreme_days(xs, dates, days, highest)[i]` from the bars of bar i's calendar window alone."""
    lo = bisect.bisect_right(dates, dates[i] - dt.timedelta(days=days), 0, i + 1)
    return _pick(xs[lo:i + 1], highest)


def shifted(xs: Values, n: int) -> Values:
    return [None] * min(n, len(xs)) + xs[:max(len(xs) - n, 0)]


def change_pct(xs: Values, n: int) -> Values:
    return [None if a is None or b is None or b == 0 else (a / b - 1) * 100 for a, b in zip(xs, shifted(xs, n),
                                                                                          strict=True)]


def volatility(xs: Values, n: int, periods: float) -> Values:
    """Sample standard deviation of the last n bar-to-bar returns (%), times sqrt(periods)."""
    returns = change_pct(xs, 1)
    scale = math.sqrt(periods)
    return [None if v is None else v * scale for v in std(returns, n, 1)]


def crosses(a: Values, b: Values) -> Values:
    return [ind.crossed_above(a, b, i) for i in range(len(a))]


# ----------------------------------------------------------------------------------- functions


def _p(name: str, default: float | None, low: float, high: float, integer: bool = True) -> Param:
    return Param(name, default, low, high, integer)


N = _p("n", None, 1, 10000)
MACD_P = (_p("fast", 12, 1, 1000), _p("slow", 26, 2, 1000), _p("signal", 9, 1, 1000))
KDJ_P = (_p("n", 9, 1, 1000), _p("m1", 3, 1, 1000), _p("m2", 3, 1, 1000))
BOLL_P = (_p("n", 20, 2, 1000), _p("k", 2, 0, 10, integer=False), _p("ddof", 1, 0, 1))


def _macd(part: int) -> Callable[[list[Values], list[float], SymbolSeries], Values]:
    def run(_: list[Values], p: list[float], s: SymbolSeries) -> Values:
        return list(s.shared(("macd", *p), lambda: ind.macd(s.column("close"), _i(p[0]), _i(p[1]), _i(p[2])))[part])
    return run


def _kdj(part: int) -> Callable[[list[Values], list[float], SymbolSeries], Values]:
    def run(_: list[Values], p: list[float], s: SymbolSeries) -> Values:
        return list(s.shared(("kdj", *p), lambda: ind.kdj(s.column("high"), s.column("low"), s.column("close"),
                                                          _i(p[0]), _i(p[1]), _i(p[2])))[part])
    return run


def _boll(part: int) -> Callable[[list[Values], list[float], SymbolSeries], Values]:
    def run(_: list[Values], p: list[float], s: SymbolSeries) -> Values:
        return list(s.shared(("boll", *p), lambda: ind.boll(s.column("close"), _i(p[0]), p[1], _i(p[2])))[part])
    return run


def _boll_bar(part: int) -> Callable[[list[Values], list[float], SymbolSeries, int], Any]:
    """One bar of `_boll(part)`: the rolling mean as BOLL computes it (over every bar, it is cheap), and the
    standard deviation of that bar's window alone."""
    def bar(_: list[Values], p: list[float], s: SymbolSeries, i: int) -> Any:
        close, n = s.column("close"), _i(p[0])
        mid = s.shared(("boll-mid", n), lambda: ind.ma(close, n))[i]
        if part == 0:
            return mid
        sds = s.shared(("boll-sd", n, p[2]), dict)  # both bands of a bar read one window
        sd = sds[i] if i in sds else sds.setdefault(i, std_at(close, n, _i(p[2]), i))
        if mid is None or sd is None:
            return None
        return mid + p[1] * sd if part == 1 else mid - p[1] * sd
    return bar


_KDJ_HOW = "RSV over {0} bars (fewer at the start), K = SMA(RSV,{1},1) and D = SMA(K,{2},1) seeded at 50, " \
           "RSV 50 on a flat window"
_BOLL_HOW = "{0}-bar MA of close {1} {2} x {3} standard deviation"


def _boll_how(sign: str) -> Callable[[list[float]], str]:
    def how(p: list[float]) -> str:
        kind = "sample" if p[2] == 1 else "population"
        return f"BOLL({_i(p[0])},{_g(p[1])}) {'upper' if sign == '+' else 'lower'} band: " + \
            _BOLL_HOW.format(_i(p[0]), sign, _g(p[1]), kind)
    return how


FUNCTIONS: dict[str, Function] = {f.name: f for f in [
    Function("ma", 1, (N,), "number", False, lambda p: f"simple mean of {{x}} over the last {_i(p[0])} bars",
             lambda p: _i(p[0]) - 1, lambda x, p, s: ma(x[0], _i(p[0]))),
    Function("avg", 1, (N,), "number", False, lambda p: f"average {{x}} over the last {_i(p[0])} bars",
             lambda p: _i(p[0]) - 1, lambda x, p, s: ma(x[0], _i(p[0]))),
    Function("ema", 1, (N,), "number", True,
             lambda p: f"EMA of {{x}} over {_i(p[0])} bars, Y = (2X + {_i(p[0]) - 1}Y') / {_i(p[0]) + 1}, "
                       "seeded with the first value", lambda p: 0, lambda x, p, s: ema(x[0], _i(p[0]))),
    Function("sma", 1, (N, _p("m", None, 1, 10000)), "number", True,
             lambda p: f"Chinese SMA({_i(p[0])},{_i(p[1])}) of {{x}}, Y = ({_i(p[1])}X + {_i(p[0] - p[1])}Y') / "
                       f"{_i(p[0])}, seeded with the first value",
             lambda p: 0, lambda x, p, s: sma(x[0], _i(p[0]), _i(p[1]))),
    Function("std", 1, (_p("n", None, 2, 10000),), "number", False,
             lambda p: f"sample standard deviation of {{x}} over the last {_i(p[0])} bars", lambda p: _i(p[0]) - 1,
             lambda x, p, s: std(x[0], _i(p[0]), 1), lambda x, p, s, i: std_at(x[0], _i(p[0]), 1, i)),
    Function("stdp", 1, (N,), "number", False,
             lambda p: f"population standard deviation of {{x}} over the last {_i(p[0])} bars", lambda p: _i(p[0]) - 1,
             lambda x, p, s: std(x[0], _i(p[0]), 0), lambda x, p, s, i: std_at(x[0], _i(p[0]), 0, i)),
    Function("highest", 1, (N,), "number", False, lambda p: f"highest {{x}} of the last {_i(p[0])} bars",
             lambda p: _i(p[0]) - 1, lambda x, p, s: extreme(x[0], _i(p[0]), True),
             lambda x, p, s, i: extreme_at(x[0], _i(p[0]), True, i)),
    Function("lowest", 1, (N,), "number", False, lambda p: f"lowest {{x}} of the last {_i(p[0])} bars",
             lambda p: _i(p[0]) - 1, lambda x, p, s: extreme(x[0], _i(p[0]), False),
             lambda x, p, s, i: extreme_at(x[0], _i(p[0]), False, i)),
    Function("highest_days", 1, (_p("days", None, 1, 36600),), "number", False,
             lambda p: f"highest {{x}} of the last {_i(p[0])} calendar days", lambda p: 0,
             lambda x, p, s: extreme_days(x[0], s.dates, _i(p[0]), True),
             lambda x, p, s, i: extreme_days_at(x[0], s.dates, _i(p[0]), True, i)),
    Function("lowest_days", 1, (_p("days", None, 1, 36600),), "number", False,
             lambda p: f"lowest {{x}} of the last {_i(p[0])} calendar days", lambda p: 0,
             lambda x, p, s: extreme_days(x[0], s.dates, _i(p[0]), False),
             lambda x, p, s, i: extreme_days_at(x[0], s.dates, _i(p[0]), False, i)),
    Function("ret", 1, (N,), "number", False, lambda p: f"% change of {{x}} over {_i(p[0])} bars", lambda p: _i(p[0]),
             lambda x, p, s: change_pct(x[0], _i(p[0]))),
    Function("ref", 1, (N,), "number", False, lambda p: f"{{x}} {_i(p[0])} bars earlier", lambda p: _i(p[0]),
             lambda x, p, s: shifted(x[0], _i(p[0]))),
    Function("volatility", 1, (_p("n", None, 2, 10000), _p("periods", 1, 1, 10000)), "number", False,
             lambda p: f"sample standard deviation of the last {_i(p[0])} bar-to-bar % changes of {{x}}"
                       + (f", annualised x sqrt({_i(p[1])})" if p[1] != 1 else ""),
             lambda p: _i(p[0]), lambda x, p, s: volatility(x[0], _i(p[0]), p[1]),
             lambda x, p, s, i: volatility_at(x[0], _i(p[0]), p[1], i)),
    Function("cross", 2, (), "bool", False, lambda p: "{x} crosses above {y} on this bar",
             lambda p: 0, lambda x, p, s: crosses(x[0], x[1])),
    Function("macd_dif", 0, MACD_P, "number", True,
             lambda p: f"MACD({_i(p[0])},{_i(p[1])},{_i(p[2])}) DIF = EMA{_i(p[0])} - EMA{_i(p[1])} of close",
             lambda p: 0, _macd(0)),
    Function("macd_dea", 0, MACD_P, "number", True,
             lambda p: f"MACD({_i(p[0])},{_i(p[1])},{_i(p[2])}) DEA = EMA{_i(p[2])} of DIF", lambda p: 0, _macd(1)),
    Function("macd_bar", 0, MACD_P, "number", True,
             lambda p: f"MACD({_i(p[0])},{_i(p[1])},{_i(p[2])}) bar = 2 x (DIF - DEA)", lambda p: 0, _macd(2)),
    Function("kdj_k", 0, KDJ_P, "number", True,
             lambda p: f"KDJ({_i(p[0])},{_i(p[1])},{_i(p[2])}) K: " + _KDJ_HOW.format(*map(_i, p)),
             lambda p: 0, _kdj(0)),
    Function("kdj_d", 0, KDJ_P, "number", True,
             lambda p: f"KDJ({_i(p[0])},{_i(p[1])},{_i(p[2])}) D: " + _KDJ_HOW.format(*map(_i, p)),
             lambda p: 0, _kdj(1)),
    Function("kdj_j", 0, KDJ_P, "number", True,
             lambda p: f"KDJ({_i(p[0])},{_i(p[1])},{_i(p[2])}) J = 3K - 2D: " + _KDJ_HOW.format(*map(_i, p)),
             lambda p: 0, _kdj(2)),
    Function("rsi", 0, (_p("n", 6, 1, 1000),), "number", True,
             lambda p: f"RSI({_i(p[0])}) of close, Wilder smoothing SMA(.,{_i(p[0])},1) seeded with the first change",
             lambda p: 1, lambda x, p, s: ind.rsi(s.column("close"), _i(p[0]))),
    Function("boll_mid", 0, BOLL_P[:1], "number", False,
             lambda p: f"BOLL({_i(p[0])}) mid = {_i(p[0])}-bar MA of close", lambda p: _i(p[0]) - 1, _boll(0),
             _boll_bar(0)),
    Function("boll_upper", 0, BOLL_P, "number", False, _boll_how("+"), lambda p: _i(p[0]) - 1, _boll(1),
             _boll_bar(1)),
    Function("boll_lower", 0, BOLL_P, "number", False, _boll_how("-"), lambda p: _i(p[0]) - 1, _boll(2),
             _boll_bar(2)),
]}


def full_params(fn: Function, given: Sequence[float]) -> list[float]:
    """The given parameters followed by the defaults of those left out (boll_mid(20) is BOLL(20,2,1))."""
    out = list(given)
    for p in fn.params[len(given):]:
        assert p.default is not None
        out.append(p.default)
    if fn.name == "boll_mid":
        out += [2, 1]
    return out


# ----------------------------------------------------------------------------------- one symbol


def _no_refs(path: str) -> expr.Node | None:
    return None


_KEYS: dict[int, tuple[expr.Node, str]] = {}


def _key(node: expr.Node) -> str:
    """A formula node's memo key, its text: kept per node object (a backtest asks for the same nodes on every
    date, and unparsing them each time cost more than reading the value)."""
    hit = _KEYS.get(id(node))
    if hit is None or hit[0] is not node:
        if len(_KEYS) > 4096:
            _KEYS.clear()
        hit = _KEYS[id(node)] = (node, expr.unparse(node))
    return hit[1]


class SymbolSeries:
    """One symbol's price history and every formula computed on it, each once over the whole series
    (`values`), or on the one bar an evaluation reads (`at`).

    `values(node)` is the formula's value on every bar; `index(day)` is the bar an evaluation as of
    `day` reads (the last on or before it). `computations` counts whole-series computations, so a
    test (and bench/derived.py) can show the cost follows bars and formulas, not dates.
    """

    def __init__(self, series: PriceSeries, lookup: Callable[[str], expr.Node | None] = _no_refs) -> None:
        self.series = series
        self.dates: list[dt.date] = [b.date for b in series.bars]
        self.lookup = lookup
        self.computations = 0
        self._columns: dict[str, Values] = {}
        self._memo: dict[str, Values] = {}
        self._by_id: dict[int, tuple[expr.Node, Values]] = {}
        self._shared: dict[tuple[Any, ...], Any] = {}

    def __len__(self) -> int:
        return len(self.dates)

    def index(self, day: dt.date | None) -> int | None:
        """The last bar on or before `day` (the last bar when `day` is None); None before the first."""
        if day is None:
            return len(self.dates) - 1 if self.dates else None
        i = bisect.bisect_right(self.dates, day) - 1
        return i if i >= 0 else None

    def column(self, name: str) -> Values:
        col = self._columns.get(name)
        if col is None:
            col = self._columns[name] = [getattr(b, name, None) for b in self.series.bars]
        return col

    def shared(self, key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        """One computation for the parts of an indicator (MACD's DIF, DEA and bar come from one run)."""
        if key not in self._shared:
            self._shared[key] = make()
        return self._shared[key]

    def values(self, node: expr.Node) -> Values:
        """The formula's value on every bar (computed the first time, then kept)."""
        by_id = self._by_id.get(id(node))
        if by_id is not None and by_id[0] is node:  # the same tree object: one lookup, no key to make
            return by_id[1]
        key = _key(node)  # equal formulas written in different places share one computation
        hit = self._memo.get(key)
        if hit is None:
            v = self._eval(node)
            hit = self._memo[key] = v if isinstance(v, list) else [v] * len(self.dates)
            self.computations += 1
        self._by_id[id(node)] = (node, hit)  # keeps `node` alive, so its id is not reused
        return hit

    def value_at(self, node: expr.Node, i: int) -> Any:
        """`values(node)[i]`: the whole series computed (once), then indexed; for callers reading many bars."""
        return self.values(node)[i]

    def at(self, node: expr.Node, i: int) -> Any:
        """The formula's value on bar i, equal to `values(node)[i]` (a test compares them on every bar).

        Series functions whose bars are each worked out from one window alone (standard deviations,
        volatility, BOLL's bands, highs and lows: `Function.bar`) work out bar i's window only, with the
        same arithmetic; the others (moving averages, MACD, KDJ, RSI) are computed over the whole series
        and kept, as `values` computes them. What combines series bar by bar (arithmetic, comparisons,
        `and`, `or`, `not`, abs and the like) is worked out on bar i alone, with the same operations. An
        evaluation reads one bar: `volatility(close, 60, 250)` then costs one window of 60 returns, not
        830, and `abs(macd_dif(12, 26, 9)) / close * 100 < 1` its MACD, not five more passes over every
        bar (a real-universe symbol's facts, 890 bars: 12.0 -> 3.6 ms). Callers reading one symbol on
        many dates (a backtest) use `value_at` instead: per date, this would cost a backtest's
        evaluations about 6% more (the bundled formulas' facts, 92 -> 131 us a date, against ~0.6 ms an
        evaluation)."""
        if isinstance(node, expr.Const):
            return node.value
        if isinstance(node, expr.Word):
            return self.column(node.name)[i]
        if isinstance(node, expr.FactRef):
            target = self.lookup(node.path)
            if target is None:
                raise ValueError(f"{node.path} is not a price-history formula")
            return self.at(target, i)
        if isinstance(node, expr.Call) and node.fn in FUNCTIONS:
            fn = FUNCTIONS[node.fn]
            whole = self._memo.get(_key(node))
            if whole is not None or fn.bar is None:
                return (whole if whole is not None else self.values(node))[i]
            return fn.bar(*self._arguments(node, fn), self, i)
        by_id = self._by_id.get(id(node))
        if by_id is not None and by_id[0] is node:  # computed over the whole series already
            return by_id[1][i]
        if isinstance(node, expr.Neg):
            a = self.at(node.operand, i)
            return None if a is None else -a
        if isinstance(node, (expr.Arith, expr.Cmp)):
            a, b = self.at(node.left, i), self.at(node.right, i)
            if a is None or b is None:
                return None
            return _ARITH[node.op](a, b) if isinstance(node, expr.Arith) else expr.compare(node.op, a, b)
        if isinstance(node, expr.BoolOp):
            return (all3 if node.op == "and" else any3)([self.at(item, i) for item in node.items])
        if isinstance(node, expr.Not):
            a = self.at(node.item, i)
            return None if a is None else not a
        if isinstance(node, expr.Call):  # a plain function of this bar's values (abs, min, max, ...)
            args = [self.at(a, i) for a in node.args]
            if None in args:
                return None
            v = expr.apply_arith(node, args)
            return None if isinstance(v, expr.Missing) else v
        raise ValueError(f"not a price-history expression: {expr.unparse(node)}")

    def _sub(self, node: expr.Node) -> Any:
        """A scalar for a constant, else the per-bar list (memoised for calls and references)."""
        if isinstance(node, expr.Const):
            return node.value
        if isinstance(node, (expr.Call, expr.FactRef)):
            return self.values(node)
        return self._eval(node)

    def _eval(self, node: expr.Node) -> Any:
        if isinstance(node, expr.Const):
            return node.value
        if isinstance(node, expr.Word):
            return self.column(node.name)
        if isinstance(node, expr.FactRef):
            target = self.lookup(node.path)
            if target is None:
                raise ValueError(f"{node.path} is not a price-history formula")
            return self.values(target)
        if isinstance(node, expr.Neg):
            return _map(lambda a: -a, self._sub(node.operand))
        if isinstance(node, expr.Arith):
            return _map2(_ARITH[node.op], self._sub(node.left), self._sub(node.right))
        if isinstance(node, expr.Cmp):
            return _map2(lambda a, b: expr.compare(node.op, a, b), self._sub(node.left), self._sub(node.right))
        if isinstance(node, expr.BoolOp):
            items = [self._sub(i) for i in node.items]
            length = len(self.dates)
            cols = [i if isinstance(i, list) else [i] * length for i in items]
            combine = all3 if node.op == "and" else any3
            return [combine(vals) for vals in zip(*cols, strict=True)]
        if isinstance(node, expr.Not):
            return _map(lambda a: not a, self._sub(node.item))
        if isinstance(node, expr.Call):
            fn = FUNCTIONS.get(node.fn)
            if fn is None:
                args = [self._sub(a) for a in node.args]
                return _mapn(lambda *xs: expr.apply_arith(node, list(xs)), args, len(self.dates))
            return fn.run(*self._arguments(node, fn), self)
        raise ValueError(f"not a price-history expression: {expr.unparse(node)}")

    def _arguments(self, node: expr.Call, fn: Function) -> tuple[list[Values], list[float]]:
        """A series function's input series (every bar) and its parameters, the defaults filled in."""
        inputs = [self._sub(a) for a in node.args[:fn.inputs]]
        params = full_params(fn, [float(a.value) for a in node.args[fn.inputs:]])  # type: ignore[attr-defined]
        return [x if isinstance(x, list) else [x] * len(self.dates) for x in inputs], params


def _div(a: float, b: float) -> float | None:
    return None if b == 0 else a / b


_ARITH: dict[str, Callable[[Any, Any], Any]] = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b, "/": _div}


def _map(f: Callable[[Any], Any], xs: Any) -> Any:
    if not isinstance(xs, list):
        return None if xs is None else f(xs)
    return [None if x is None else f(x) for x in xs]


def _map2(f: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    if not isinstance(a, list) and not isinstance(b, list):
        return None if a is None or b is None else f(a, b)
    n = len(a) if isinstance(a, list) else len(b)
    xs = a if isinstance(a, list) else [a] * n
    ys = b if isinstance(b, list) else [b] * n
    return [None if x is None or y is None else f(x, y) for x, y in zip(xs, ys, strict=True)]


def _mapn(f: Callable[..., Any], args: list[Any], n: int) -> Values:
    cols = [a if isinstance(a, list) else [a] * n for a in args]
    out: Values = []
    for xs in zip(*cols, strict=True):
        if None in xs:
            out.append(None)
            continue
        v = f(*xs)
        out.append(None if isinstance(v, expr.Missing) else v)
    return out


def all3(vals: Sequence[Any]) -> bool | None:
    """Three-valued `and`: False wins, else unknown (None) if any is unknown."""
    if any(v is False for v in vals):
        return False
    return None if any(v is None for v in vals) else True


def any3(vals: Sequence[Any]) -> bool | None:
    """Three-valued `or`: True wins, else unknown (None) if any is unknown."""
    if any(v is True for v in vals):
        return True
    return None if any(v is None for v in vals) else False


class SeriesCache:
    """The computed series of the most recently used symbols (least recently used dropped first).

    A backtest or a screen works through one symbol at a time, so a few symbols suffice; a
    cross-sectional sweep over every symbol on many dates goes symbol by symbol too (see
    formulas.CrossSections.prefetch). Keyed by the PriceSeries object itself.
    """

    def __init__(self, lookup: Callable[[str], expr.Node | None] = _no_refs, max_symbols: int = 16) -> None:
        self.lookup = lookup
        self.max_symbols = max(1, max_symbols)
        self._items: OrderedDict[int, SymbolSeries] = OrderedDict()
        self.built = 0  # SymbolSeries made (a miss: the symbol's formulas computed again)

    def get(self, series: PriceSeries) -> SymbolSeries:
        key = id(series)
        hit = self._items.get(key)
        if hit is not None and hit.series is series:
            self._items.move_to_end(key)
            return hit
        hit = self._items[key] = SymbolSeries(series, self.lookup)
        self.built += 1
        while len(self._items) > self.max_symbols:
            self._items.popitem(last=False)
        return hit

    def computations(self) -> int:
        return sum(s.computations for s in self._items.values())
