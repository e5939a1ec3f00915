"""Backtest statistics against hand computations: ranks, rank IC, Newey-West, quantiles, turnover, promises."""

from __future__ import annotations

import datetime as dt
import math
import random
import statistics
from array import array

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import btstats
from engine.forward import align, price_status, rating_dates, trading_calendar


def test_ranks_share_ties_and_spearman_matches_hand_values() -> None:
    assert btstats.ranks([3.0, 1.0, 3.0, 2.0]) == [3.5, 1.0, 3.5, 2.0]
    assert btstats.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(0.8207826816681233)
    assert btstats.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert btstats.spearman([1, 1, 1], [1, 2, 3]) is None  # a constant side has no rank correlation


@given(st.lists(st.floats(-1e6, 1e6), min_size=3, max_size=40), st.randoms())
def test_spearman_is_bounded_and_symmetric(xs: list[float], rnd: random.Random) -> None:
    ys = xs[:]
    rnd.shuffle(ys)
    r = btstats.spearman(xs, ys)
    assert r is None or (-1 - 1e-9 <= r <= 1 + 1e-9 and r == pytest.approx(btstats.spearman(ys, xs)))
    if len(set(xs)) > 1:
        assert btstats.spearman(xs, xs) == pytest.approx(1.0)


def test_newey_west_without_lags_is_the_plain_standard_error_and_lags_widen_it_for_autocorrelation() -> None:
    xs = [0.5, 1.5, -0.2, 0.8, 1.1, 0.3, -0.4, 0.9]
    m, se, t = btstats.newey_west(xs, 0)
    n = len(xs)
    want = math.sqrt(sum((x - m) ** 2 for x in xs) / n / n)  # the population variance over n, as HAC uses
    assert m == pytest.approx(statistics.fmean(xs)) and se == pytest.approx(want) and t == pytest.approx(m / want)
    # by hand with one lag: S = g0 + 2 * (1 - 1/2) * g1
    e = [x - m for x in xs]
    g0 = sum(v * v for v in e) / n
    g1 = sum(e[i] * e[i - 1] for i in range(1, n)) / n
    assert btstats.newey_west(xs, 1)[1] == pytest.approx(math.sqrt((g0 + g1) / n))
    trending = [math.sin(i / 6) + 0.1 for i in range(60)]  # strongly autocorrelated, like overlapping windows
    assert btstats.newey_west(trending, 5)[1] > btstats.newey_west(trending, 0)[1]  # type: ignore[operator]
    assert btstats.newey_west([1.0, 2.0], 3)[1] is None  # too short for its lags


def test_overlap_lags_follow_horizon_and_spacing() -> None:
    assert [btstats.overlap_lags(h, 5) for h in (5, 20, 60, 120)] == [0, 3, 11, 23]
    assert btstats.overlap_lags(20, 20) == 0 and btstats.overlap_lags(20, 30) == 0


def test_quantiles_keep_ties_together() -> None:
    assert btstats.quantile_of([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 5) == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    q = btstats.quantile_of([0, 0, 0, 0, 0, 0, 1, 2], 4)
    assert q == [2, 2, 2, 2, 2, 2, 4, 4]  # the tie sits at its average rank; quantiles 1 and 3 stay empty


def test_promises_read_from_the_rating_meanings() -> None:
    read = btstats.promise_range
    assert read("expected to outperform the CSI 300 by more than 20% over the next 6 months") == (20.0, None)
    assert read("expected to outperform the CSI 300 by 5% to 20% over the next 6 months") == (5.0, 20.0)
    assert read("expected to perform within 5% of the CSI 300 over the next 6 months") == (-5.0, 5.0)
    assert read("expected to underperform the CSI 300 by more than 5% over the next 6 months") == (None, -5.0)
    assert read("a good stock") is None
    assert btstats.promise_horizon("6 months") == 120 and btstats.promise_horizon("a while") is None


def _panel(scores_by_date: list[list[float]], returns_by_date: list[list[float]], bench: list[float],
           ratings_by_date: list[list[int]], every: int = 20) -> btstats.Panel:
    n = len(scores_by_date[0])
    dates = [dt.date(2024, 1, 1) + dt.timedelta(days=7 * t) for t in range(len(bench))]
    return btstats.Panel(dates, ["Buy", "Hold", "Neutral", "Sell"], [f"S{i}" for i in range(n)],
                         [array("b", [ratings_by_date[t][s] for t in range(len(bench))]) for s in range(n)],
                         [array("d", [scores_by_date[t][s] for t in range(len(bench))]) for s in range(n)],
                         {20: [array("d", [returns_by_date[t][s] for t in range(len(bench))]) for s in range(n)]},
                         {20: array("d", bench)}, every)


def test_a_perfect_score_has_ic_one_and_ordered_ratings() -> None:
    rnd = random.Random(7)
    scores, rets, ratings, bench = [], [], [], []
    for _ in range(12):
        sc = [rnd.uniform(-3, 6) for _ in range(40)]
        scores.append(sc)
        rets.append([2 * s + 1 for s in sc])  # excess rises with the score
        ratings.append([0 if s >= 4 else 1 if s >= 2 else 2 if s >= -1 else 3 for s in sc])
        bench.append(1.0)
    out = btstats.horizon_stats(_panel(scores, rets, bench, ratings), 20)
    assert out["ic"]["mean"] == pytest.approx(1.0) and out["ic"]["positive_pct"] == 100.0
    means = [r["mean_excess_pct"] for r in out["by_rating"]]
    assert means == sorted(means, reverse=True)
    hand = [2 * s + 1 - 1.0 for t in range(12) for s, r in zip(scores[t], ratings[t], strict=True) if r == 0]
    assert out["by_rating"][0]["count"] == len(hand)
    assert out["by_rating"][0]["mean_excess_pct"] == pytest.approx(statistics.fmean(hand), abs=1e-3)
    assert out["by_rating"][0]["median_excess_pct"] == pytest.approx(statistics.median(hand), abs=1e-3)
    q = out["by_quantile"]
    assert [row["count"] for row in q] == [96] * 5 and q[0]["mean_excess_pct"] < q[-1]["mean_excess_pct"]


def test_unknown_returns_and_unrated_symbols_are_left_out() -> None:
    nan = math.nan
    p = _panel([[1, 2, 3, 4, 5, 6]], [[1, nan, 3, 4, 5, 6]], [0.5], [[2, 2, -1, 1, 0, 0]])
    out = btstats.horizon_stats(p, 20)
    assert out["observations"] == 4  # one return unknown, one symbol not rated
    assert out["by_rating"][0]["count"] == 2 and out["by_rating"][0]["hit_rate_pct"] == 100.0
    assert out["ic"]["dates"] == 0 and out["ic"]["dates_undefined"] == 1  # fewer than 5 names


def test_turnover_counts_changes_between_consecutive_dates() -> None:
    ratings = [[0, 0, 1, 2], [0, 1, 1, 2], [0, 1, 1, -1]]
    p = _panel([[0.0] * 4] * 3, [[0.0] * 4] * 3, [0.0] * 3, ratings)
    out = btstats.turnover(p)
    assert out["rating_changed_pct"] == pytest.approx((1 / 4 * 100 + 0) / 2, abs=0.05)
    assert out["new_members_pct"]["Hold"] == pytest.approx((1 / 2 * 100 + 0) / 2, abs=0.05)


def test_promise_check_uses_the_horizon_nearest_the_policy() -> None:
    stats = {20: {"by_rating": []}, 120: {"by_rating": [
        {"rating": "Buy", "per_date_mean_excess_pct": 25.0, "ci95_pct": [21.0, 29.0]},
        {"rating": "Neutral", "per_date_mean_excess_pct": 8.0, "ci95_pct": [2.0, 14.0]}]}}
    meanings = [("Buy", "outperform the CSI 300 by more than 20%"), ("Neutral", "within 5% of the CSI 300"),
                ("Sell", "underperform the CSI 300 by more than 5%")]
    out = btstats.promises(meanings, "6 months", stats)
    assert out["horizon_used"] == 120
    buy, neutral, sell = out["ratings"]
    assert buy["met"] is True and buy["confident"] == "met with 95% confidence"
    assert neutral["met"] is False and "straddles" in neutral["confident"]
    assert sell["met"] is None
    assert btstats.promises(meanings, "6 months", {20: stats[20]})["checked"] is False


def test_calendar_status_and_alignment_of_a_suspended_stock_that_stops_trading() -> None:
    d = [dt.date(2025, 1, k) for k in (2, 3, 6, 7, 8, 9, 10)]
    stock = [d[0], d[1], d[4]]  # suspended on d[2], d[3]; stops trading after d[4]
    cal = trading_calendar([stock, d], end=d[-1])
    assert cal == d
    assert price_status(stock, dt.date(2025, 1, 1), 7, 1) == "not listed yet"
    assert price_status(stock, d[3], 7, 1) == "" and price_status(stock, d[3], 7, 3) == "short price history"
    assert price_status(stock, dt.date(2025, 1, 20), 7, 1) == "no recent price"
    a = align(cal, stock, [10.0, 11.0, 12.0], [10.5, 11.5, 12.5])
    assert a.open_at == [10.0, 11.0, 11.5, 11.5, 12.0, 12.5, 12.5]  # last close carried, never dropped
    assert a.forward(0, 2) == pytest.approx((11.5 / 11.0 - 1) * 100)  # bought at d[1]'s open
    assert a.forward(3, 2) == pytest.approx((12.5 / 12.0 - 1) * 100)  # stopped trading: valued at its last close
    assert math.isnan(a.forward(5, 1))  # runs past the data
    index = align(cal, d[:4], None, [100.0, 101.0, 102.0, 103.0], carry=False)
    assert index.open_at == [None, 100.0, 101.0, 102.0, None, None, None]  # no opens: the previous close
    assert rating_dates(cal, d[1], d[-1], 2) == [d[1], d[3], d[5]]


def test_prices_end_where_most_histories_end() -> None:
    from engine.backtesting import prices_end

    a, b, c = dt.date(2025, 9, 3), dt.date(2026, 4, 7), dt.date(2025, 8, 13)
    assert prices_end([a] * 5 + [b] * 2 + [c]) == a  # a few longer files do not move the download's end
    assert prices_end([b] * 5) == b and prices_end([a, b]) == b and prices_end([]) is None
