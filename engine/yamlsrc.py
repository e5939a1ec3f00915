"""YAML text -> plain data plus a map from each key path to its line and column.

Only the safe loader is used (never full/unsafe loading). Positions are read from the composed node
tree, so every later error (pydantic, expression, type) can point at file:line:col. Duplicate keys,
which PyYAML silently lets overwrite each other, are reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import Location, Problem, problem

Loc = tuple[str | int, ...]
# libyaml's safe loader when the wheel has it (10x faster), else the pure-Python one: both safe.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass
class SourceDoc:
    """A parsed YAML document and where each of its nodes sits in the file."""

    path: str
    data: Any
    marks: dict[Loc, Location] = field(default_factory=dict)
    key_marks: dict[Loc, Location] = field(default_factory=dict)
    styles: dict[Loc, str] = field(default_factory=dict)

    def at(self, loc: Loc) -> Location:
        """The nearest known position for `loc` (falls back to its parents)."""
        probe = tuple(loc)
        while probe:
            if probe in self.marks:
                return self.marks[probe]
            probe = probe[:-1]
        return self.marks.get((), Location(self.path, 1, 1))

    def key_at(self, loc: Loc) -> Location:
        return self.key_marks.get(tuple(loc), self.at(loc))

    def value_col_offset(self, loc: Loc) -> int:
        """Columns between the node's mark and its text (1 for quoted scalars, else 0)."""
        return 1 if self.styles.get(tuple(loc)) in ("'", '"') else 0


def _mark(path: str, node: yaml.Node) -> Location:
    return Location(path, node.start_mark.line + 1, node.start_mark.column + 1)


def _walk(doc: SourceDoc, node: yaml.Node, loc: Loc, problems: list[Problem]) -> None:
    doc.marks[loc] = _mark(doc.path, node)
    if isinstance(node, yaml.ScalarNode):
        if node.style:
            doc.styles[loc] = node.style
    elif isinstance(node, yaml.MappingNode):
        seen: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
            here = _mark(doc.path, key_node)
            if key in seen:
                problems.append(
                    Problem(here, "duplicate-key", f"key '{key}' appears twice in this mapping "
                            f"(first at line {seen[key].line}).",
                            "YAML keeps only the last one; remove or rename one of them.")
                )
            seen[key] = here
            doc.key_marks[(*loc, key)] = here
            _walk(doc, value_node, (*loc, key), problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(doc, item, (*loc, i), problems)


def parse_yaml(text: str, path: str | Path) -> tuple[SourceDoc, list[Problem]]:
    """Parse one YAML document safely; syntax errors come back as problems, never exceptions."""
    spath = str(path)
    try:
        loader = SAFE_LOADER(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        what = exc.problem or "malformed YAML"
        ctx = f" ({exc.context})" if exc.context else ""
        return SourceDoc(spath, None), [
            problem(spath, line, col, "yaml-syntax", f"this is not valid YAML: {what}{ctx}.",
                    "Check the indentation and quoting on this line and the one before it; "
                    "quote text that contains ': ' or starts with a special character.")
        ]
    except yaml.YAMLError as exc:  # pragma: no cover - unmarked errors are rare
        return SourceDoc(spath, None), [problem(spath, 1, 1, "yaml-syntax", f"this is not valid YAML: {exc}.")]
    doc = SourceDoc(spath, data)
    problems: list[Problem] = []
    if node is not None:
        _walk(doc, node, (), problems)
    return doc, problems


class _Duplicate(Exception):
    pass


class _FastLoader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, refusing duplicate keys instead of keeping the last (no positions kept)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if len(keys) != len(set(keys)):
            raise _Duplicate
        return super().construct_mapping(node, deep=deep)


def fast_load(text: str) -> object | None:
    """Data of a well-formed document without position maps (a tenth of the memory), or None when the
    document has an error or a duplicate key: the caller then parses it again with positions."""
    try:
        loader = _FastLoader(text)
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except (yaml.YAMLError, _Duplicate):
        return None


def read_yaml(path: Path, display: str | None = None) -> tuple[SourceDoc, list[Problem]]:
    shown = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        return SourceDoc(shown, None), [
            problem(shown, 1, 1, "encoding", f"the file is not UTF-8 text ({exc.reason}).", "Save it as UTF-8.")
        ]
    return parse_yaml(text, shown)
