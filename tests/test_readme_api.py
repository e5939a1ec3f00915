"""The README's "Python API" examples, run as written (the way sqlite-utils keeps its docs honest).

Every ```python block of the section is executed, in order, in one namespace, from a copy of the
repository's rules and facts; then what the examples claim is checked against the command line.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, Run


def _examples() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Python API\n")
    end = text.index("\n## ", start + 1)
    return re.findall(r"```python\n(.*?)```", text[start:end], flags=re.S)


def test_the_readme_has_python_api_examples() -> None:
    blocks = _examples()
    assert len(blocks) >= 6
    used = {name for b in blocks for name in re.findall(r"from engine import ([^\n]+)", b)}
    names = {n.strip() for line in used for n in line.split(",")}
    import engine

    assert names <= set(engine.__all__), names - set(engine.__all__)


def test_the_readme_python_api_examples_run_as_written(workdir: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str], verdict: Run) -> None:
    monkeypatch.chdir(workdir)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    for i, block in enumerate(_examples()):
        try:
            exec(compile(block, f"README.md Python API example {i + 1}", "exec"), namespace)
        except Exception as exc:  # pragma: no cover - the failure message is the point
            pytest.fail(f"README Python API example {i + 1} fails: {type(exc).__name__}: {exc}\n{block}")
    printed = capsys.readouterr().out

    # What the examples say they give is what the command gives.
    cli = verdict("evaluate", "600111", "--format", "json", "--no-record", cwd=workdir)
    assert cli.returncode == 0, cli.stderr
    data = dict(namespace["data"])  # type: ignore[call-overload]
    expected = json.loads(cli.stdout)
    assert {k: v for k, v in data.items() if k != "run_id"} == {k: v for k, v in expected.items() if k != "run_id"}
    from engine import render_table

    ev = namespace["ev"]
    assert render_table(ev, width=100) in printed  # type: ignore[arg-type]
    table = verdict("evaluate", "600111", "--no-record", cwd=workdir).stdout  # piped: 160 columns
    assert table == render_table(ev, width=160) + "\n"  # type: ignore[arg-type]
    frame = namespace["frame"]
    assert isinstance(frame, pd.DataFrame) and frame.index.name == "symbol" and len(frame) >= 1
    assert list(frame.columns) == ["name", "rating", "score", "pe_ttm", "upside", "warning"]
    assert (frame["pe_ttm"] < 60).all() and list(frame["pe_ttm"]) == sorted(frame["pe_ttm"])
    screen = verdict("evaluate", "--all", "--where", "stock.pe_ttm < 60", "--columns",
                     "name,rating,score,pe_ttm,upside,warning", "--sort", "pe_ttm:asc", "--format", "json",
                     "--no-record", cwd=workdir)
    assert json.loads(screen.stdout) == json.loads(frame.reset_index().to_json(orient="records", force_ascii=False))
    assert "unknown-symbol" in printed or "unknown" in printed
    rec = namespace["rec"]
    assert rec.run_id == ev.run_id and f"{ev.run_id} True" in printed  # type: ignore[attr-defined]
    assert (workdir / "600111.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert (workdir / "my-facts" / "stocks" / "601398.yaml").is_file()


def test_every_public_name_resolves_and_import_engine_loads_nothing() -> None:
    import subprocess
    import sys

    import engine

    assert set(engine.__all__) == {"__version__", *engine._EXPORTS}
    for name in engine.__all__:
        assert getattr(engine, name) is not None, name
    assert sorted(dir(engine)) == sorted(engine.__all__)
    with pytest.raises(AttributeError):
        engine.no_such_name  # noqa: B018
    # `import engine` (the command line's first import) loads none of the pipeline
    code = "import sys, engine; print(sorted(m for m in sys.modules if m.startswith('engine')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "['engine']"
    # no exported name is shadowed by a submodule of the same name, whatever was imported before
    code = ("import importlib, pkgutil, types, engine\n"
            "for m in pkgutil.iter_modules(engine.__path__):\n"
            "    if not m.name.startswith('_'): importlib.import_module('engine.' + m.name)\n"
            "from engine import *\n"
            "print([n for n in engine.__all__ if isinstance(getattr(engine, n), types.ModuleType)])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
