"""YAML documents with their source lines, and the line a field path points at.

A pre-commit gate must say where to look: every document is read together with its node tree,
so an error's field path (``spec.engines[0].members[0].role``) maps back to the line of the key
that holds it (or of the nearest parent that exists, for a missing field).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_TOKEN = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Document:
    """One YAML document: its data, its node tree, and the line it starts on (1-based)."""

    data: Any
    node: yaml.Node | None
    line: int


def documents(path: Path) -> Iterator[Document]:
    """Every document of a file with its nodes (raises yaml.YAMLError when malformed)."""
    text = path.read_text(encoding="utf-8")
    loader = yaml.SafeLoader(text)
    try:
        while loader.check_node():
            node = loader.get_node()
            data = loader.construct_document(node) if node is not None else None
            line = node.start_mark.line + 1 if node is not None else 1
            yield Document(data, node, line)
    finally:
        loader.dispose()


def split_path(field_path: str) -> list[str | int]:
    """``a.b[0].c`` -> ["a", "b", 0, "c"]."""
    out: list[str | int] = []
    for key, index in _TOKEN.findall(field_path):
        out.append(int(index) if index else key)
    return out


def line_of(node: yaml.Node | None, field_path: str | list[str | int], default: int = 1) -> int:
    """The 1-based line of the deepest part of ``field_path`` present below ``node``."""
    if node is None:
        return default
    tokens = split_path(field_path) if isinstance(field_path, str) else list(field_path)
    line = node.start_mark.line + 1
    current: yaml.Node = node
    for token in tokens:
        if isinstance(current, yaml.MappingNode) and isinstance(token, str):
            found = next(((k, v) for k, v in current.value
                          if isinstance(k, yaml.ScalarNode) and k.value == token), None)
            if found is None:
                return line
            line, current = found[0].start_mark.line + 1, found[1]
        elif isinstance(current, yaml.SequenceNode) and isinstance(token, int):
            if token >= len(current.value):
                return line
            current = current.value[token]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def child(node: yaml.Node | None, *tokens: str | int) -> yaml.Node | None:
    """The node at ``tokens`` below ``node``, or None."""
    current = node
    for token in tokens:
        if isinstance(current, yaml.MappingNode) and isinstance(token, str):
            current = next((v for k, v in current.value
                            if isinstance(k, yaml.ScalarNode) and k.value == token), None)
        elif isinstance(current, yaml.SequenceNode) and isinstance(token, int):
            current = current.value[token] if token < len(current.value) else None
        else:
            return None
    return current
