"""No engine module reaches into another's private names: what two modules share is public.

Read from the source (ast), so an import inside a function counts as much as one at the top. The one
exemption is the package's C extension `_durable_compat`, private to the package and imported by rete.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import ROOT

ENGINE = ROOT / "engine"
PACKAGE_PRIVATE = {"_durable_compat"}


def _private_uses(path: Path, modules: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    aliases: dict[str, str] = {}  # local name -> engine module it names
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level >= 1 or (node.module or "").startswith("engine")):
            from_package = node.module in (None, "engine")
            for a in node.names:
                if a.name.startswith("_") and not a.name.startswith("__") and a.name not in PACKAGE_PRIVATE:
                    found.append(f"{path.name}:{node.lineno}: from {node.module or '.'} import {a.name}")
                if from_package and a.name in modules:
                    aliases[a.asname or a.name] = a.name
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("engine.") and a.asname:
                    aliases[a.asname] = a.name.split(".", 1)[1]
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and node.attr.startswith("_") and not node.attr.startswith("__")):
            found.append(f"{path.name}:{node.lineno}: {aliases[node.value.id]}.{node.attr}")
    return found


def test_no_module_imports_another_modules_private_name() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    modules = {p.stem for p in files}
    found = [use for p in files for use in _private_uses(p, modules)]
    assert found == []


def test_the_command_line_renders_nothing_itself() -> None:
    """cli.py parses arguments and calls the library; tables, CSV, Markdown and sorting live elsewhere
    (engine/output/ renders, screening.py sorts): no csv writer, no table layout, no sort in it."""
    source = (ENGINE / "cli.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import | ast.ImportFrom) for a in n.names}
    assert not imported & {"csv", "io", "textwrap", "rich.table", "text_table", "tabulate"}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name | ast.Attribute)]
    names = {n.func.id if isinstance(n.func, ast.Name) else n.func.attr for n in calls}
    assert not names & {"sort", "ljust", "rjust", "writerow", "writerows", "screen_table", "render_table"}
    # ordering results takes a key; ordering what the user typed (completion candidates, --horizons) does not
    assert not [n.lineno for n in calls if isinstance(n.func, ast.Name) and n.func.id == "sorted" and n.keywords]
    assert "|---" not in source and '" | "' not in source


def test_the_check_sees_a_private_import(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from . import expr\nfrom .load import _read\n\ndef f():\n    return expr._arith(1)\n")
    assert _private_uses(bad, {"expr", "load"}) == ["bad.py:2: from load import _read", "bad.py:5: expr._arith"]


def test_every_subpackage_is_a_package_and_is_installed() -> None:
    """A folder of modules without __init__.py imports from a checkout (a namespace package) but is left
    out of the wheel unless pyproject lists it: `pip install .` would then ship a command that fails."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    folders = {p.parent for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts}
    for folder in folders:
        assert (folder / "__init__.py").is_file(), folder
        assert ".".join(folder.relative_to(ROOT).parts) in listed, folder


def test_one_symbol_normaliser_for_the_facts_and_the_audit_log() -> None:
    """The command line's --symbol of audit commands uses the importer's exchange rule (BJ 92x codes too)."""
    from engine.barformats import canonical_symbol
    from engine.cli import _canonical_symbol

    assert [canonical_symbol(s) for s in ("600111", "300748", "000831", "688001", "920001", "430047", " 600111.sh ")] \
        == ["600111.SH", "300748.SZ", "000831.SZ", "688001.SH", "920001.BJ", "430047.BJ", "600111.SH"]
    assert canonical_symbol("999999") == "999999" and canonical_symbol("北方稀土") == "北方稀土"
    assert _canonical_symbol("920001") == "920001.BJ" and _canonical_symbol(None) is None
