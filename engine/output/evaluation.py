"""One evaluation in the format asked for: the table people read at a terminal, Markdown, the
derivation tree, CSV (a screen's fixed columns) or its JSON (the outcome's own document)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..model import Outcome


def evaluation_output(outcome: Outcome, fmt: str, *, explain: bool = False, depth: int | None = None,
                      width: int | None = None) -> str:
    """The text `verdict evaluate SYMBOL` prints, ending with a newline."""
    from ..explain import render_markdown, render_table, render_tree
    from .screen import summary_csv

    if fmt == "jsonl":
        return outcome.json() + "\n"
    if fmt == "json":
        return json.dumps(json.loads(outcome.json()), ensure_ascii=False, indent=2) + "\n"
    if fmt == "csv":
        return summary_csv([outcome.summary])
    if explain:
        return render_tree(outcome.evaluation(), depth) + "\n"
    if fmt == "markdown":
        return render_markdown(outcome.evaluation()) + "\n"
    return render_table(outcome.evaluation(), width) + "\n"
