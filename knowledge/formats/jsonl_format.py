"""JSON Lines: one object per line, an entry, an evaluation-set line or a ``"kind"`` line.

An entry has the keys of ``Entry.to_dict()``; the evaluation format has ``question``/``answer`` as plain
text plus ``lang`` (``source`` is ignored); a line with ``"kind": "department"`` (code, name),
``"category"`` (code, name, auto_answer) or ``"synonyms"`` (terms) defines those. Blank lines are skipped.
"""

from __future__ import annotations

import json
from typing import Any

from knowledge.entry import KnowledgeBase
from knowledge.formats.reader import Reader


def dumps_jsonl(kb: KnowledgeBase) -> str:
    """JSON Lines: departments, categories and synonyms as "kind" lines, then one line per entry."""
    lines = [{"kind": "department", **department.to_dict()} for department in kb.departments]
    lines += [{"kind": "category", **category.to_dict()} for category in kb.categories]
    lines += [{"kind": "synonyms", "terms": list(group)} for group in kb.synonyms]
    lines += [entry.to_dict() for entry in kb.entries]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} appears twice")
        data[key] = value
    return data


def read_jsonl(reader: Reader, text: str) -> None:
    # Only "\n" ends a line: str.splitlines() would also split inside texts at U+2028 and friends.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line, object_pairs_hook=_unique_keys)
        except json.JSONDecodeError as exc:
            reader.error(number, None, f"invalid JSON at column {exc.colno}: {exc.msg}")
        except (ValueError, RecursionError) as exc:
            reader.error(number, None, f"invalid JSON: {exc}")
        else:
            reader.json_line(data, number)
