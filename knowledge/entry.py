"""The knowledge base's domain model: entries, categories, departments, synonyms."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date, datetime, tzinfo
from typing import Any

LANGUAGES: tuple[str, ...] = ("en", "zh")
"""Languages every entry should carry; the first is the fallback."""

Localized = dict[str, str]
"""Text per language code, e.g. ``{"en": "Tax Bureau", "zh": "税务局"}``."""


@dataclass(frozen=True)
class Link:
    """A link shown under an answer."""

    url: str
    title: Localized = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """One question the account can answer, in several languages."""

    id: str
    category: str = ""
    department: str = ""
    question: Localized = field(default_factory=dict)
    alternatives: dict[str, list[str]] = field(default_factory=dict)
    answer: Localized = field(default_factory=dict)
    keywords: dict[str, list[str]] = field(default_factory=dict)
    links: list[Link] = field(default_factory=list)
    valid_from: date | None = None
    valid_until: date | None = None
    auto_answer: bool = True
    """False takes the entry out of automatic answering: it is only offered in "did you mean"."""

    def languages(self) -> list[str]:
        """Languages this entry has a question for."""
        return [lang for lang, text in self.question.items() if text]

    @property
    def has_answer(self) -> bool:
        """Whether there is an answer to show in any language (an import does not insist on one)."""
        return any(text.strip() for text in self.answer.values())

    def is_valid_on(self, day: date) -> bool:
        """Whether the entry is in force on ``day``."""
        if self.valid_from is not None and day < self.valid_from:
            return False
        return self.valid_until is None or day <= self.valid_until

    def to_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready dict with a stable key order (empty optional fields left out)."""
        data: dict[str, Any] = {"id": self.id, "category": self.category, "department": self.department}
        data["question"] = dict(self.question)
        if self.alternatives:
            data["alternatives"] = {k: list(v) for k, v in self.alternatives.items()}
        data["answer"] = dict(self.answer)
        if self.keywords:
            data["keywords"] = {k: list(v) for k, v in self.keywords.items()}
        if self.links:
            data["links"] = [_link_dict(link) for link in self.links]
        if self.valid_from is not None:
            data["valid_from"] = self.valid_from.isoformat()
        if self.valid_until is not None:
            data["valid_until"] = self.valid_until.isoformat()
        if not self.auto_answer:
            data["auto_answer"] = False
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        """Inverse of :meth:`to_dict` for already validated data."""
        return cls(
            id=str(data["id"]),
            category=str(data.get("category", "")),
            department=str(data.get("department", "")),
            question=dict(data.get("question", {})),
            alternatives={k: list(v) for k, v in data.get("alternatives", {}).items()},
            answer=dict(data.get("answer", {})),
            keywords={k: list(v) for k, v in data.get("keywords", {}).items()},
            links=[
                Link(url=link["url"], title=dict(link.get("title", {}))) for link in data.get("links", [])
            ],
            valid_from=_date_or_none(data.get("valid_from")),
            valid_until=_date_or_none(data.get("valid_until")),
            auto_answer=bool(data.get("auto_answer", True)),
        )

    def replace(self, **changes: Any) -> Entry:
        """A copy with ``changes`` applied."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class Category:
    """A browsable group of entries, with its display name and answering policy."""

    code: str
    name: Localized = field(default_factory=dict)
    auto_answer: bool = True
    """False takes every entry of the category out of automatic answering at once."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"code": self.code, "name": dict(self.name)}
        if not self.auto_answer:
            data["auto_answer"] = False
        return data


@dataclass(frozen=True)
class DepartmentRef:
    """A department as the knowledge base knows it: code and display name."""

    code: str
    name: Localized = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "name": dict(self.name)}


@dataclass
class KnowledgeBase:
    """Everything loaded from knowledge-base files."""

    entries: list[Entry] = field(default_factory=list)
    categories: list[Category] = field(default_factory=list)
    departments: list[DepartmentRef] = field(default_factory=list)
    synonyms: list[list[str]] = field(default_factory=list)
    """Groups of equivalent terms; the first term of a group is its canonical form."""

    def entry(self, entry_id: str) -> Entry | None:
        return next((e for e in self.entries if e.id == entry_id), None)


def _link_dict(link: Link) -> dict[str, Any]:
    data: dict[str, Any] = {"url": link.url}
    if link.title:
        data["title"] = dict(link.title)
    return data


def _date_or_none(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value))


def local_date(moment: datetime, zone: tzinfo) -> date:
    """The calendar date at ``moment`` in ``zone``: the service desk's day, which validity is judged on."""
    return moment.astimezone(zone).date()
