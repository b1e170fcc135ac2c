"""YAML, the main format: top-level ``departments``, ``categories``, ``synonyms`` and ``entries``.

``knowledge/sample/`` shows them all. Plain scalars are read as text, so ``12345`` or ``no`` stay what was
typed; dates are ``YYYY-MM-DD``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import yaml

try:  # libyaml's parser reads about ten times faster; PyYAML's own is the fallback
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
from knowledge.entry import KnowledgeBase
from knowledge.formats.reader import Reader, YamlMapping, YamlSequence

_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MAX_DEPTH = 50


def dumps_yaml(kb: KnowledgeBase) -> str:
    """Human-friendly YAML: block style, literal multi-line answers, stable key order."""
    data: dict[str, Any] = {}
    if kb.departments:
        data["departments"] = [department.to_dict() for department in kb.departments]
    if kb.categories:
        data["categories"] = [category.to_dict() for category in kb.categories]
    if kb.synonyms:
        data["synonyms"] = [_FlowList(group) for group in kb.synonyms]
    if kb.entries:
        data["entries"] = [entry.to_dict() for entry in kb.entries]
    if not data:
        return ""
    return yaml.dump(data, Dumper=_BlockDumper, allow_unicode=True, sort_keys=False, width=100)


def _resolvers(resolvers: dict[Any, Any], keep: Callable[[str], bool]) -> dict[Any, Any]:
    return {first: [rule for rule in rules if keep(rule[0])] for first, rules in resolvers.items()}


# Only null and merge keys are resolved on reading: every other plain scalar stays the text staff
# typed ("12345" in a synonym group, "no" as Norwegian, "007"), and dates and flags are parsed
# here with located errors. Writing resolves as usual, so such texts are quoted, except dates.
_READ_TAGS = frozenset({"tag:yaml.org,2002:null", "tag:yaml.org,2002:merge"})


class _LineLoader(_SafeLoader):
    """A safe loader that remembers lines, notices repeated keys and reads scalars as text."""

    yaml_implicit_resolvers = _resolvers(_SafeLoader.yaml_implicit_resolvers, _READ_TAGS.__contains__)

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.repeated_keys: list[tuple[int, str]] = []

    def construct_lined_map(self, node: yaml.MappingNode) -> Iterator[YamlMapping]:
        data = YamlMapping(node.start_mark.line + 1)
        yield data
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in data.lines and key != "<<":
                self.repeated_keys.append((key_node.start_mark.line + 1, key))
            data.lines[key] = value_node.start_mark.line + 1
            data.key_lines[key] = key_node.start_mark.line + 1
        data.update(self.construct_mapping(node))

    def construct_lined_seq(self, node: yaml.SequenceNode) -> Iterator[YamlSequence]:
        data = YamlSequence(node.start_mark.line + 1)
        yield data
        data.lines = [item.start_mark.line + 1 for item in node.value]
        data.extend(self.construct_sequence(node))


_LineLoader.add_constructor("tag:yaml.org,2002:map", _LineLoader.construct_lined_map)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _LineLoader.construct_lined_seq)


class _BlockDumper(yaml.SafeDumper):
    """Block style, list items indented under their key, no anchors, multi-line text as | blocks."""

    yaml_implicit_resolvers = _resolvers(yaml.SafeDumper.yaml_implicit_resolvers, _TIMESTAMP_TAG.__ne__)

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    # PyYAML falls back to a quoted style by itself when a literal block cannot hold the text.
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style="|" if "\n" in text else None)


class _FlowList(list[str]):
    """A short list written on one line, e.g. a synonym group: ``[社会保险, 社保]``."""


def _represent_flow_list(dumper: yaml.SafeDumper, items: _FlowList) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=True)


_BlockDumper.add_representer(str, _represent_text)
_BlockDumper.add_representer(_FlowList, _represent_flow_list)


def _too_deep(text: str) -> int | None:
    """The line where nesting gets deeper than any knowledge base needs, if it does.

    Checked on the event stream first because libyaml's composer would overflow the C stack.
    """
    depth = 0
    for event in yaml.parse(text, Loader=_SafeLoader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > _MAX_DEPTH:
                return event.start_mark.line + 1 if event.start_mark else 1
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
    return None


def read_yaml(reader: Reader, text: str) -> None:
    loader = _LineLoader(text)
    try:
        deep_at = _too_deep(text)
        data = None if deep_at else loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reader.error(mark.line + 1 if mark else None, None, f"malformed YAML: {exc.problem or exc.context}")
        return
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        code = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        reader.error(line, None, f"malformed YAML: {exc.reason} (U+{code:04X})")
        return
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        reader.error(None, None, f"malformed YAML: {exc}")  # e.g. an explicit "!!int x" tag
        return
    finally:
        loader.dispose()
    if deep_at:
        reader.error(deep_at, None, f"malformed YAML: nested more than {_MAX_DEPTH} levels deep")
    for line, key in loader.repeated_keys:
        reader.error(line, key, "this key appears twice in the same mapping")
    reader.document(data)
