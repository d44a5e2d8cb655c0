"""Safe YAML reading that remembers the line of every key.

Only plain data is ever constructed (mappings, lists, strings, numbers, booleans,
null): a config can never execute code. Duplicate keys, unsafe tags, alias
expansion bombs and nesting deeper than a config can mean are refused with the
line they are on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from nnlab.errors import ConfigError
from nnlab.store.folder import MAX_NESTING

#: The most values one document may expand to (anchors and aliases included).
MAX_NODES = 100_000
_SAFE_TAGS = {
    "tag:yaml.org,2002:str", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool", "tag:yaml.org,2002:null",
}

Path_ = tuple[Any, ...]


class _TooDeep(Exception):
    """Raised by :class:`_Loader` with the line where the nesting went too deep."""

    def __init__(self, line: int):
        super().__init__(line)
        self.line = line


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing nesting deeper than :data:`MAX_NESTING` levels as it
    composes (its composer recurses once per level: thousands of brackets would exhaust
    Python's stack)."""

    _depth = 0

    def compose_node(self, parent, index):  # noqa: D102 - PyYAML's hook
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise _TooDeep(self.peek_event().start_mark.line + 1)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


@dataclass
class YamlDocument:
    """Parsed YAML data and the 1-based line of every key and list item.

    Args:
        data: the plain Python data.
        source: the file name (or label) used in messages.
        lines: maps a key path such as ``("training", "epochs")`` to its line.
    """

    data: Any
    source: str
    lines: dict[Path_, int] = field(default_factory=dict)

    def line_of(self, path: Path_) -> int | None:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get(())


def read_yaml_file(path: str | Path) -> YamlDocument:
    """Read a YAML file; see :func:`parse_yaml`.

    Returns:
        The parsed document.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError("file not found", source=str(path)) from None
    except IsADirectoryError:
        raise ConfigError("is a directory, expected a YAML file", source=str(path)) from None
    except OSError as err:
        raise ConfigError(f"cannot read: {err.strerror}", source=str(path)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise ConfigError(f"not valid UTF-8 text (byte 0x{raw[err.start]:02x}); save the file as UTF-8",
                          source=str(path), line=line) from None
    return parse_yaml(text, str(path))


def parse_yaml(text: str, source: str) -> YamlDocument:
    """Parse one YAML document into plain data with a line map.

    Args:
        text: the YAML text.
        source: name used in error messages.

    Returns:
        The parsed document.

    Raises:
        ConfigError: on syntax errors, duplicate keys, unsafe tags, documents
            that expand to more than ``MAX_NODES`` values, or nest deeper than ``MAX_NESTING``.
    """
    loader = _Loader(text)
    try:
        try:
            node = loader.get_single_node()
        except _TooDeep as err:
            raise ConfigError(f"nested more than {MAX_NESTING} levels deep; a config nests a few levels "
                              "(model.layers[i].Dense.kernel_regularizer...): a bracket or indentation gone "
                              "wrong?", source=source, line=err.line) from None
        except yaml.MarkedYAMLError as err:
            mark = err.problem_mark or err.context_mark
            line = mark.line + 1 if mark else None
            problem = err.problem or "invalid YAML"
            hint = ""
            text_lines = text.splitlines()
            if line and line <= len(text_lines) and "\t" in text_lines[line - 1]:
                hint = "; indent with spaces, not tabs"
            elif line and any(word in problem for word in ("mapping values", "block end", "expected key",
                                                            "expected ':'", "block mapping")):
                # What PyYAML reports for a key indented unlike its neighbours.
                hint = f"; check the indentation of line {line} against the lines above it"
            raise ConfigError(f"YAML syntax error: {problem}{hint}", source=source, line=line) from None
        except yaml.YAMLError as err:
            raise ConfigError(f"YAML error: {err}", source=source) from None
        doc = YamlDocument(data=None, source=source)
        if node is None:
            return doc
        budget = [MAX_NODES]
        doc.data = _to_data(loader, node, (), doc, budget)
        return doc
    finally:
        loader.dispose()


def _to_data(loader: yaml.SafeLoader, node: yaml.Node, path: Path_, doc: YamlDocument,
             budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise ConfigError(f"document expands to more than {MAX_NODES} values "
                          "(anchors and aliases are expanded); refusing it",
                          source=doc.source, line=node.start_mark.line + 1)
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        if node.tag != "tag:yaml.org,2002:map":
            raise _tag_error(node, doc)
        loader.flatten_mapping(node)  # resolves merge keys (<<)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("mapping keys must be plain names", source=doc.source,
                                  line=key_node.start_mark.line + 1)
            key = _scalar(loader, key_node, doc)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                key = str(key)
            key_path = path + (key,)
            if key in result:
                raise ConfigError(f"duplicate key '{key}' (first on line {doc.lines.get(key_path)})",
                                  source=doc.source, line=key_node.start_mark.line + 1,
                                  key=_dotted(key_path))
            doc.lines[key_path] = key_node.start_mark.line + 1
            result[key] = _to_data(loader, value_node, key_path, doc, budget)
        doc.lines.setdefault(path, line)
        return result
    if isinstance(node, yaml.SequenceNode):
        if node.tag != "tag:yaml.org,2002:seq":
            raise _tag_error(node, doc)
        doc.lines.setdefault(path, line)
        items = []
        for i, item in enumerate(node.value):
            doc.lines.setdefault(path + (i,), item.start_mark.line + 1)
            items.append(_to_data(loader, item, path + (i,), doc, budget))
        return items
    return _scalar(loader, node, doc)


def _scalar(loader: yaml.SafeLoader, node: yaml.Node, doc: YamlDocument) -> Any:
    if node.tag not in _SAFE_TAGS:
        raise _tag_error(node, doc)
    value = loader.construct_object(node, deep=True)
    return value


def _tag_error(node: yaml.Node, doc: YamlDocument) -> ConfigError:
    tag = node.tag.replace("tag:yaml.org,2002:", "!!")
    return ConfigError(f"YAML tag '{tag}' is not allowed: a config holds only plain values "
                       "(mappings, lists, strings, numbers, booleans, null)",
                       source=doc.source, line=node.start_mark.line + 1)


def _dotted(path: Path_) -> str:
    return ".".join(str(p) for p in path)
