"""matplotlib for the commands that draw (backtest, sensitivity --chart), from the `charts` extra.

The core install has no plotting library (it starts faster and installs lighter); a command asked
for a chart without it says how to get it, in one sentence, instead of failing on an import.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from .errors import Location, LookupFailure, Problem


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def pyplot() -> Any:
    """matplotlib.pyplot on the file-only Agg backend, or a clear error naming the extra."""
    if not available():
        raise LookupFailure([Problem(Location(), "missing-extra", "charts need matplotlib, which is not installed.",
                                     "Install it with: pip install 'verdict[charts]'.")])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt
