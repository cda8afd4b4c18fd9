"""Reading YAML with a bound on aliases and on the size they expand to.

PyYAML's ``SafeLoader`` resolves ``*alias`` to the *same* node, so a few hundred bytes of
nested aliases (``b: [*a, *a]``, ``c: [*b, *b]``, …) describe a document of 2^N nodes.
Anything that walks it as a tree (our line map, pydantic validation, ``copy.deepcopy`` of a
matrix expansion, JSON output) then spins for minutes and eats gigabytes.  Every YAML file
the project reads (scenarios, hardware configs, quantization specs) goes through
:class:`BoundedLoader`, which refuses a document

* with more than :data:`MAX_ALIASES` alias nodes,
* whose node count *with every alias expanded* exceeds :data:`MAX_EXPANDED_NODES`, or
* with a recursive alias (an alias inside the node it refers to).

The refusal is a ``yaml.MarkedYAMLError`` carrying the position of the offending alias, so
callers' existing ``except yaml.YAMLError`` handlers report it as ``file:line`` like a
syntax error.  Real files use a handful of aliases (if any) and a few hundred nodes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from golden.errors import FileMissingError, UserInputError

#: Most alias nodes (``*name``) one document may contain.
MAX_ALIASES = 100
#: Most nodes one document may hold once every alias is expanded (a scenario has ~100).
MAX_EXPANDED_NODES = 100_000


class YamlLimitError(yaml.MarkedYAMLError):
    """A document beyond the alias/size bounds (a ``YAMLError``, so it is reported like one)."""


class BoundedLoader(yaml.SafeLoader):
    """``SafeLoader`` that counts aliases while composing and checks the expanded size."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._aliases = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise YamlLimitError(None, None, f"more than {MAX_ALIASES} aliases (*name): refused "
                                     "(a YAML alias bomb?); write the values out instead", mark)
        return super().compose_node(parent, index)

    def compose_document(self) -> yaml.Node:  # type: ignore[override]
        node = super().compose_document()
        expanded_size(node)
        return node


def expanded_size(root: yaml.Node) -> int:
    """Nodes in ``root`` with every alias expanded; raises ``YamlLimitError`` past the bound.

    Shared nodes are counted once per reference (memoised per node, so this is linear in the
    composed graph, not in the expansion)."""
    memo: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise YamlLimitError(None, None, "recursive alias (a node that contains itself) refused",
                                 node.start_mark)
        active.add(key)
        n = 1
        if isinstance(node, yaml.SequenceNode):
            for child in node.value:
                n += size(child)
        elif isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                n += size(k) + size(v)
        active.discard(key)
        if n > MAX_EXPANDED_NODES:
            raise YamlLimitError(None, None, f"the document expands to more than {MAX_EXPANDED_NODES:,} "
                                 "values through its aliases: refused (a YAML alias bomb?)", node.start_mark)
        memo[key] = n
        return n

    return size(root) if root is not None else 0


def compose_yaml(text: str) -> yaml.Node | None:
    """The bounded node graph of one YAML document (``None`` for an empty one)."""
    loader = BoundedLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def construct_yaml(node: yaml.Node | None) -> Any:
    """Python values of a node composed by :func:`compose_yaml` (safe types only)."""
    if node is None:
        return None
    loader = BoundedLoader("")
    try:
        return loader.construct_document(node)
    finally:
        loader.dispose()


def safe_load_text(text: str) -> Any:
    """``yaml.safe_load`` with the alias and size bounds (raises ``yaml.YAMLError``)."""
    return construct_yaml(compose_yaml(text))


def load_yaml_safely(path: str | Path, what: str = "YAML file") -> Any:
    """Read and parse one YAML file: every problem is a ``UserInputError`` naming ``path:line``."""
    path = Path(path)
    try:
        if not path.is_file():
            raise FileMissingError(path, what)
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not a text file ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise UserInputError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        return safe_load_text(text)
    except yaml.YAMLError as exc:
        raise UserInputError(yaml_error_message(path, exc)) from None


def yaml_error_message(path: str | Path, exc: yaml.YAMLError) -> str:
    """``path:line: invalid YAML, column C: problem`` for any PyYAML error."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    col = f", column {mark.column + 1}" if mark else ""
    return f"{where}: invalid YAML{col}: {getattr(exc, 'problem', None) or exc}"


__all__ = ["BoundedLoader", "MAX_ALIASES", "MAX_EXPANDED_NODES", "YamlLimitError", "compose_yaml",
           "construct_yaml", "expanded_size", "load_yaml_safely", "safe_load_text", "yaml_error_message"]
