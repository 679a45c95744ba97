"""YAML → located data: plain values plus the line of every key path.

The YAML is composed into nodes and walked here (not ``yaml.safe_load``) so that every key path
keeps its line number, duplicate keys are refused instead of silently winning, and keys stay the
text the user wrote (PyYAML would turn a key ``on:`` into ``True``). Alias expansion, depth and
size are bounded so a hostile file cannot exhaust memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from kernel.errors import MissionInvalid, Problem

MAX_FILE_BYTES = 5 * 1024 * 1024
MAX_NODES = 100_000  # alias expansion ("billion laughs") stops here
MAX_DEPTH = 64

_TAG = "tag:yaml.org,2002:"
_MERGE_TAG = _TAG + "merge"
_TEXT_TAGS = {_TAG + "str", _TAG + "timestamp"}  # a date-looking version stays the text written
_COLLECTION_TAGS = {_TAG + "map", _TAG + "seq"}
_TYPED_TAGS = {_TAG + t for t in ("int", "float", "bool", "null")}


# ----------------------------------------------------------------------------- YAML → located data


class TooBig(Exception):
    pass


class Located:
    """Builds plain data from YAML nodes, recording the line of every key path."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.problems: list[Problem] = []
        self._constructor = SafeConstructor()
        self._count = 0
        self._stack: set[int] = set()
        self.scalars: dict[str, str] = {}  # path -> text of an unquoted non-string scalar

    def problem(self, line: int | None, path: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, path, message))

    def build(self, node: Node, path: str, line: int) -> Any:
        self.lines.setdefault(path, line)
        self._count += 1
        if self._count > MAX_NODES:
            raise TooBig
        if id(node) in self._stack:
            self.problem(line, path, "an alias refers to itself (recursive anchor)")
            return None
        if len(self._stack) >= MAX_DEPTH:
            self.problem(line, path, f"nested more than {MAX_DEPTH} levels deep")
            return None
        self._stack.add(id(node))
        if isinstance(node, MappingNode | SequenceNode) and node.tag not in _COLLECTION_TAGS:
            self.problem(line, path, f"unsupported YAML tag {node.tag!r}: write a plain list or mapping")
        try:
            if isinstance(node, MappingNode):
                return self._mapping(node, path)
            if isinstance(node, SequenceNode):
                return [
                    self.build(item, join_path(path, i), item.start_mark.line + 1) for i, item in enumerate(node.value)
                ]
            return self._scalar(node, path, line)
        finally:
            self._stack.discard(id(node))

    def _scalar(self, node: Node, path: str, line: int) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return str(node.value)
        if tag in _TYPED_TAGS:
            if isinstance(node, ScalarNode) and node.style is None:
                self.scalars[path] = str(node.value)
            return self._constructor.construct_object(node)
        self.problem(line, path, f"unsupported YAML tag {tag!r}: write a plain value")
        return str(node.value)  # keep validating the rest without a second, confusing error

    def _mapping(self, node: MappingNode, path: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        first_line: dict[str, int] = {}
        merges: list[tuple[Node, int]] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if not isinstance(key_node, ScalarNode):
                self.problem(key_line, path, "a key must be plain text, not a list or mapping")
                continue
            if key_node.tag == _MERGE_TAG:
                merges.append((value_node, key_line))
                continue
            key = str(key_node.value)  # the text as written: `on:` is "on", not True
            if key in first_line:
                self.problem(
                    key_line, join_path(path, key), f"duplicate key '{key}' (first given on line {first_line[key]})"
                )
                continue
            first_line[key] = key_line
            out[key] = self.build(value_node, join_path(path, key), key_line)
        for value_node, key_line in merges:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for source in sources:
                if not isinstance(source, MappingNode):
                    self.problem(key_line, path, "'<<' merges a mapping (or a list of mappings) only")
                    continue
                merged = self.build(source, path, key_line)
                for key, value in merged.items():
                    out.setdefault(key, value)
        return out


def join_path(path: str, part: str | int) -> str:
    return f"{path}.{part}" if path else str(part)


def line_for(parts: list[str], lines: Mapping[str, int]) -> int | None:
    """Line of the deepest prefix of ``parts`` that exists in the file."""
    for n in range(len(parts), -1, -1):
        line = lines.get(".".join(parts[:n]))
        if line is not None:
            return line
    return None


def read_text(path: Path, file: str) -> tuple[bytes, str]:
    try:
        if path.is_dir():
            raise MissionInvalid([Problem(file, None, "", "is a directory, not a mission file")])
        with path.open("rb") as fh:
            blob = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise MissionInvalid([Problem(file, None, "", "mission file not found")]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise MissionInvalid([Problem(file, None, "", f"cannot read the mission file: {reason}")]) from None
    if len(blob) > MAX_FILE_BYTES:
        raise MissionInvalid([Problem(file, None, "", f"larger than {MAX_FILE_BYTES} bytes: not a mission file")])
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = blob[: exc.start].count(b"\n") + 1
        raise MissionInvalid(
            [Problem(file, line, "", f"not UTF-8 text (byte 0x{blob[exc.start]:02x} at offset {exc.start})")]
        ) from None
    return blob, text


def compose(text: str, file: str) -> Node | None:
    try:
        return yaml.compose(text.removeprefix("\ufeff"), Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = " ".join(s for s in (exc.context, exc.problem) if s) or "cannot parse"
        rows = text.splitlines()
        bad_row = rows[line - 1] if line is not None and 0 < line <= len(rows) else ""
        if "\t" in bad_row or "'\\t'" in what:
            what += " (tabs cannot indent YAML: use spaces)"
        raise MissionInvalid([Problem(file, line, "", f"YAML syntax error: {what}")]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        char = exc.character
        code = char if isinstance(char, int) else ord(str(char)[:1] or " ")
        message = f"YAML cannot read the file: {exc.reason} (character U+{code:04X})"
        raise MissionInvalid([Problem(file, line, "", message)]) from None
    except (yaml.YAMLError, RecursionError) as exc:
        raise MissionInvalid([Problem(file, None, "", f"YAML cannot be parsed: {type(exc).__name__}")]) from None
