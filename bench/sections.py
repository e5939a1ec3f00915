"""Named sections of bench/RESULTS.md that one bench script owns and the others keep.

bench/bench.py rewrites RESULTS.md from its own figures; other bench scripts (the backtest, the
executors) write their section between `<!-- section:NAME -->` and `<!-- /section:NAME -->`, and
bench.py carries every such section over unchanged when it rewrites the file.
"""

from __future__ import annotations

import re
from pathlib import Path

_BLOCK = re.compile(r"<!-- section:(?P<name>[\w-]+) -->\n.*?<!-- /section:(?P=name) -->\n", re.S)


def sections(path: Path) -> dict[str, str]:
    """Every named section of the file, markers included, by name."""
    if not path.is_file():
        return {}
    return {m.group("name"): m.group(0) for m in _BLOCK.finditer(path.read_text(encoding="utf-8"))}


def kept(path: Path) -> str:
    """The named sections of the file, to append when rewriting the rest of it."""
    found = sections(path)
    return "".join("\n" + block for block in found.values())


def update(path: Path, name: str, body: str) -> None:
    """Replace (or append) the section `name` of the file with `body`."""
    block = f"<!-- section:{name} -->\n{body.rstrip()}\n<!-- /section:{name} -->\n"
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    old = sections(path).get(name)
    text = text.replace(old, block) if old else text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")
