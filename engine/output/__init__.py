"""What people read, made in one place: tables, Markdown, CSV and the tools' JSON, from results the
library computed. Nothing here evaluates, sorts or filters (screening.py decides what a screen shows
and in which order); the command line prints what these functions return.

- `evaluation`: one evaluation (table, Markdown, derivation tree, every `evaluate` format)
- `screen`: a screen's rows and documents; `scenarios`: what-if scenarios and grids
- `sensitivity`, `rules` (check, test, diff), `audit` (list, replay, verify, run diffs), `backtest`
- `tables` (aligned text tables) and `cells` (how one value reads in each format), shared by all
"""
