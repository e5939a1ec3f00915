"""YAML text -> plain data plus a map from each key path to its line and column.

Only the safe loader is used (never full/unsafe loading). Positions are read from the composed node
tree, so every later error (pydantic, expression, type) can point at file:line:col. Duplicate keys,
which PyYAML silently lets overwrite each other, are reported. Before any value is built, the node
graph is measured against the limits in limits.py (nesting depth, node count with aliases expanded,
alias references; recursive aliases are refused), so an alias bomb fails in milliseconds; a scalar
that cannot be built (`2026-02-30`, an integer of 5,000 digits) is an error at its position.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from . import limits
from .errors import Location, Problem, problem
from .readfile import read_file

Loc = tuple[str | int, ...]
# libyaml's safe loader when the wheel has it (10x faster), else the pure-Python one: both safe.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class Refused(Exception):
    """The document breaks a limit or holds a value that cannot be built; `node` says where."""

    def __init__(self, node: yaml.Node, code: str, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.node, self.code, self.message, self.hint = node, code, message, hint


class _Loader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader; a scalar it cannot build (`2026-02-30`, an integer of 5,000 digits) stays the text
    it is, so validation reports it at its position along with every other problem of the file."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:
            if isinstance(node, yaml.ScalarNode):
                return str(node.value)
            raise Refused(node, "bad-value", f"this cannot be read as a value ({exc}).") from None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def measure(root: yaml.Node) -> None:
    """Refuse a node graph beyond the limits: depth, nodes with aliases expanded, alias references,
    recursion. Iterative and memoised per node, so an alias bomb costs what its text costs."""
    size: dict[int, int] = {}
    height: dict[int, int] = {}
    open_: set[int] = set()
    aliases = 0
    stack: list[tuple[yaml.Node, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        nid = id(node)
        if done:
            open_.discard(nid)
            kids = _children(node)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            height[nid] = 1 + max((height[id(k)] for k in kids), default=0)
            if size[nid] > limits.MAX_YAML_NODES:
                raise Refused(node, "too-large", f"this part of the document expands to more than "
                              f"{limits.MAX_YAML_NODES:,} nodes (with its aliases expanded).",
                              "Split the file, or use fewer aliases (&name / *name).")
            continue
        if nid in open_:
            raise Refused(node, "recursive-alias", "an alias here refers to a node that contains it.",
                          "Recursive structures are not allowed; copy the content instead.")
        if nid in size:  # reached again: an alias reference
            aliases += 1
            if aliases > limits.MAX_YAML_ALIASES:
                raise Refused(node, "too-many-aliases", f"the document uses more than {limits.MAX_YAML_ALIASES:,} "
                              "alias references (*name).", "Write the values out, or use fewer aliases.")
            if depth + height[nid] - 1 > limits.MAX_YAML_DEPTH:
                raise Refused(node, "too-deep", f"this alias nests the document deeper than "
                              f"{limits.MAX_YAML_DEPTH} levels.", "Flatten the structure.")
            continue
        if depth > limits.MAX_YAML_DEPTH:
            raise Refused(node, "too-deep", f"the document nests deeper than {limits.MAX_YAML_DEPTH} levels "
                          "of mappings and lists here.", "Flatten the structure; no file format of verdict needs "
                          "that many levels.")
        open_.add(nid)
        stack.append((node, depth, True))
        stack.extend((k, depth + 1, False) for k in _children(node))


def _compose(loader: Any) -> Any:
    """Compose, measure, then construct one document (None for an empty one)."""
    node = loader.get_single_node()
    if node is None:
        return None, None
    measure(node)
    return node, loader.construct_document(node)


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
    """Parse one YAML document safely; syntax errors and refusals come back as problems, never exceptions."""
    spath = str(path)
    try:
        loader = _Loader(text)
        try:
            node, data = _compose(loader)
        finally:
            loader.dispose()
    except Refused as exc:
        mark = exc.node.start_mark
        return SourceDoc(spath, None), [problem(spath, mark.line + 1, mark.column + 1, exc.code, exc.message,
                                                exc.hint)]
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


class _FastLoader(_Loader):
    """The safe loader, refusing duplicate keys instead of keeping the last (no positions kept)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        if len(keys) != len(set(keys)):
            raise _Duplicate
        mapping: dict[object, object] = super().construct_mapping(node, deep=deep)
        return mapping


def fast_load(text: str) -> object | None:
    """Data of a well-formed document without position maps (a tenth of the memory), or None when the
    document has an error, a duplicate key or breaks a limit: the caller then parses it again with
    positions, to report it."""
    try:
        loader = _FastLoader(text)
        try:
            data: object | None = _compose(loader)[1]
            return data
        finally:
            loader.dispose()
    except (yaml.YAMLError, _Duplicate, Refused):
        return None


def parse_bytes(content: bytes, shown: str) -> tuple[SourceDoc, list[Problem]]:
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as exc:
        return SourceDoc(shown, None), [
            problem(shown, 1, 1, "encoding", f"the file is not UTF-8 text ({exc.reason}).", "Save it as UTF-8.")
        ]
    return parse_yaml(text, shown)


def read_yaml(path: Path, display: str | None = None) -> tuple[SourceDoc, list[Problem]]:
    shown = display or str(path)
    problems: list[Problem] = []
    content = read_file(path, shown, problems)
    if content is None:
        return SourceDoc(shown, None), problems
    return parse_bytes(content, shown)
