"""The plain-text tables the CLI prints: aligned in terminal columns, folded to the width given."""

from __future__ import annotations

from engine.output.evaluation import render_rows, render_table
from engine.output.tables import display_width, text_table


def test_columns_align_in_terminal_cells_with_chinese_names() -> None:
    out = text_table("t", ["name", "score"], [["北方稀土", "4"], ["JL Mag", "12"]], right=frozenset({1}))
    rows = out.splitlines()[1:]
    assert {display_width(r) for r in rows} == {display_width(rows[0])}  # every line equally wide on screen
    assert rows[2].endswith("   4") and rows[3].endswith("  12")


def test_the_fold_column_wraps_to_the_width_and_keeps_its_words() -> None:
    message = "Sources disagree on PE (TTM): using 86.26 over 42.5; check which basis each source uses. " * 3
    out = text_table("Warnings", ["severity", "message", "rule"], [["medium", message, "facts.conflict"]],
                     fold=1, width=80)
    lines = out.splitlines()
    assert max(display_width(line) for line in lines) <= 80
    assert " ".join(line[12:].split("facts.conflict")[0].strip() for line in lines[3:]) == message.strip()


def test_a_single_evaluation_and_a_screen_render(ws) -> None:  # type: ignore[no-untyped-def]
    ev = ws.evaluate("600111", run_id="r")
    text = render_table(ev, width=100)
    for part in ("Northern Rare Earth (600111.SH)", "Target: RMB 63.54 - 72.87, value 68.21, upside +37.5%",
                 "Evidence: coverage", "Not fragile", "Entries", "Warnings", "Signals (", "not investment advice"):
        assert part in text
    screen = render_rows([ws.run(s).summary() for s in ws.symbols()], width=100)
    assert "verdict: 5 symbol(s)" in screen and "63.54-72.87" in screen and "+37.5%" in screen
    assert screen.splitlines()[1].split()[-6:] == ["upside", "coverage", "fragile", "warnings", "as", "of"]
