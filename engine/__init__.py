"""verdict: a rule-based investment recommendation engine (see README.md, "Python API").

The library the `verdict` command wraps, importable without it::

    from engine import Workspace, render_table
    ws = Workspace.open("rules", "facts")
    print(render_table(ws.evaluate("600111")))

Every name below is imported on first use (PEP 562), so `import engine` costs nothing and the
command line, which imports this package first, starts as fast as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # the workspace and what an evaluation gives
    "Workspace": "pipeline",
    "Run": "pipeline",
    "Evaluation": "model",
    "Summary": "model",
    "RatingOut": "model",
    "TargetOut": "model",
    "EntryOut": "model",
    "WarningOut": "model",
    "SignalOut": "model",
    "Fired": "model",
    "NotFired": "model",
    "Comparison": "model",
    "FactUse": "model",
    "FactCheck": "model",
    # errors: every one is a VerdictError carrying Problems (file:line:col, code, message, hint)
    "VerdictError": "errors",
    "RuleError": "errors",
    "FactError": "errors",
    "LookupFailure": "errors",
    "EngineFault": "errors",
    "Problem": "errors",
    "Location": "errors",
    # renderers: what the command line prints
    "render_table": "output.evaluation",
    "render_tree": "output.evaluation",
    "render_markdown": "output.evaluation",
    # the tools
    "check": "lint",
    "CheckReport": "lint",
    "run_cases": "casetest",
    "coverage": "casetest",
    "CaseResult": "casetest",
    "screen": "screening",
    "ScreenResult": "screening",
    "what_if": "whatif",
    "WhatIf": "whatif",
    "sensitivity": "whatif",
    "price_sensitivity": "whatif",
    "Sensitivity": "whatif",
    "Scenario": "scenarios",
    "load_scenarios": "scenarios",
    "compare_scenarios": "scenarios",
    "grid": "scenarios",
    "parse_axis": "scenarios",
    "backtest": "backtesting",
    "BacktestRun": "backtesting",
    "AuditLog": "audit",
    "record": "audit",
    "replay": "audit",
    "replay_with_rules": "audit",
    "diff_runs": "audit",
    "import_folder": "dataimport",
    "import_indicators": "dataimport",
    "ImportSummary": "dataimport",
    "pull": "datapull",
    "stock_page": "report",
    "write_reports": "report",
    "recorded_page": "report",
}

__all__ = [
    "AuditLog",
    "BacktestRun",
    "CaseResult",
    "CheckReport",
    "Comparison",
    "EngineFault",
    "EntryOut",
    "Evaluation",
    "FactCheck",
    "FactError",
    "FactUse",
    "Fired",
    "ImportSummary",
    "Location",
    "LookupFailure",
    "NotFired",
    "Problem",
    "RatingOut",
    "RuleError",
    "Run",
    "Scenario",
    "ScreenResult",
    "Sensitivity",
    "SignalOut",
    "Summary",
    "TargetOut",
    "VerdictError",
    "WarningOut",
    "WhatIf",
    "Workspace",
    "__version__",
    "backtest",
    "check",
    "compare_scenarios",
    "coverage",
    "diff_runs",
    "grid",
    "import_folder",
    "import_indicators",
    "load_scenarios",
    "parse_axis",
    "price_sensitivity",
    "pull",
    "record",
    "recorded_page",
    "render_markdown",
    "render_table",
    "render_tree",
    "replay",
    "replay_with_rules",
    "run_cases",
    "screen",
    "sensitivity",
    "stock_page",
    "what_if",
    "write_reports",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'engine' has no attribute '{name}'")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # found once; later lookups do not come back here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


if TYPE_CHECKING:  # what type checkers and editors see: the same names, imported eagerly
    from .audit import AuditLog, diff_runs, record, replay, replay_with_rules
    from .backtesting import BacktestRun, backtest
    from .casetest import CaseResult, coverage, run_cases
    from .dataimport import ImportSummary, import_folder, import_indicators
    from .datapull import pull
    from .errors import EngineFault, FactError, Location, LookupFailure, Problem, RuleError, VerdictError
    from .lint import CheckReport, check
    from .model import (
        Comparison,
        EntryOut,
        Evaluation,
        FactCheck,
        FactUse,
        Fired,
        NotFired,
        RatingOut,
        SignalOut,
        Summary,
        TargetOut,
        WarningOut,
    )
    from .output.evaluation import render_markdown, render_table, render_tree
    from .pipeline import Run, Workspace
    from .report import recorded_page, stock_page, write_reports
    from .scenarios import Scenario, compare_scenarios, grid, load_scenarios, parse_axis
    from .screening import ScreenResult, screen
    from .whatif import Sensitivity, WhatIf, price_sensitivity, sensitivity, what_if
