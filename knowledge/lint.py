"""Checks on a knowledge base beyond what loading enforces: completeness, Telegram's limits, duplicates."""

from __future__ import annotations

import bisect
import dataclasses
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from typing import Literal

import numpy as np
from rapidfuzz import fuzz, process

from knowledge.entry import LANGUAGES, Entry, KnowledgeBase
from knowledge.formats import Location

Severity = Literal["error", "warning"]

TELEGRAM_MESSAGE_LIMIT = 4096
"""Longest message Telegram accepts, in UTF-16 code units of text after its HTML is parsed."""
MIN_ALTERNATIVES = 3
TELEGRAM_TAGS = frozenset({
    "b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "a", "code", "pre", "blockquote",
    "tg-spoiler", "span",
})
"""Tags of Telegram's HTML parse mode (``span`` only as ``<span class="tg-spoiler">``)."""
TELEGRAM_ENTITIES = ("lt", "gt", "amp", "quot")

_BLOCK_ROWS = 256  # rows of the similarity matrix computed at once: bounds memory on big knowledge bases
_NOT_WORD = re.compile(r"[^\w]+")
_BAD_AMPERSAND = re.compile(rf"&(?!(?:{'|'.join(TELEGRAM_ENTITIES)}|#[0-9]+|#x[0-9a-fA-F]+);)(#?\w*;?)")


@dataclass(frozen=True)
class Finding:
    """One problem lint found, with where to look."""

    severity: Severity
    entry_id: str | None
    field: str | None
    message: str
    path: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = "" if self.path is None else f"{self.path}:{self.line}: " if self.line else f"{self.path}: "
        subject = ": ".join(part for part in (self.entry_id, self.field) if part)
        return f"{where}{self.severity}: {subject + ': ' if subject else ''}{self.message}"


def lint(
    kb: KnowledgeBase,
    *,
    known_departments: Collection[str] | None = None,
    known_categories: Collection[str] = (),
    languages: Sequence[str] = LANGUAGES,
    near_duplicate_threshold: float = 90.0,
    today: date | None = None,
    sources: Mapping[str, Location] | None = None,
) -> list[Finding]:
    """Every finding about ``kb``: errors first within each entry, near-duplicates last.

    ``known_departments`` and ``known_categories`` add codes configured outside the files; ``today``
    turns on the check for expired entries; ``sources`` (from ``load_paths_with_sources``) fills
    in each finding's file and line.
    """
    categories = {category.code for category in kb.categories} | set(known_categories)
    findings = _duplicate_ids(kb.entries)
    for entry in kb.entries:
        findings += _completeness(entry, languages)
        findings += _category(entry, categories)
        findings += _answers(entry)
        findings += _validity(entry, today)
    findings += unknown_departments(kb, known_departments or ())
    findings += near_duplicates(kb.entries, near_duplicate_threshold)
    return [_located(finding, sources) for finding in findings] if sources else findings


def unknown_departments(
    kb: KnowledgeBase, known: Collection[str], sources: Mapping[str, Location] | None = None
) -> list[Finding]:
    """Entries whose department is neither in ``kb`` nor among ``known`` codes (already configured)."""
    departments = {department.code for department in kb.departments} | set(known)
    findings = [Finding("error", entry.id, "department", f"unknown department {entry.department!r}")
                for entry in kb.entries if entry.department and entry.department not in departments]
    return [_located(finding, sources) for finding in findings] if sources else findings


def _located(finding: Finding, sources: Mapping[str, Location]) -> Finding:
    where = sources.get(finding.entry_id or "")
    return dataclasses.replace(finding, path=where.path, line=where.line) if where else finding


def _duplicate_ids(entries: Sequence[Entry]) -> list[Finding]:
    counts = Counter(entry.id for entry in entries)
    return [Finding("error", entry_id, "id", f"{count} entries share this id")
            for entry_id, count in counts.items() if count > 1]


def _completeness(entry: Entry, languages: Sequence[str]) -> list[Finding]:
    """Missing owner fields, translations, questions without answers and few alternatives."""
    findings = [Finding("error", entry.id, name, f"no {name}")
                for name in ("category", "department") if not getattr(entry, name)]
    extra = sorted((entry.question.keys() | entry.answer.keys()) - set(languages))
    for lang in [*languages, *extra]:
        findings += [Finding("error", entry.id, f"{name}.{lang}", f"no {name} in {lang}")
                     for name in ("question", "answer") if lang not in getattr(entry, name)]
    for lang in entry.languages():
        count = len(entry.alternatives.get(lang, []))
        if count < MIN_ALTERNATIVES:
            findings.append(Finding("warning", entry.id, f"alternatives.{lang}",
                                    f"{count} alternative phrasings in {lang}; "
                                    f"at least {MIN_ALTERNATIVES} help the matcher"))
    return findings


def _category(entry: Entry, categories: Collection[str]) -> list[Finding]:
    if entry.category and entry.category not in categories:
        return [Finding("warning", entry.id, "category", f"unknown category {entry.category!r}")]
    return []


def _answers(entry: Entry) -> list[Finding]:
    """Answers that Telegram would refuse: too long, or HTML it cannot parse."""
    findings = []
    for lang, answer in entry.answer.items():
        field = f"answer.{lang}"
        findings += [Finding("error", entry.id, field, problem) for problem in telegram_html_problems(answer)]
        length = telegram_length(answer)
        if length > TELEGRAM_MESSAGE_LIMIT:
            findings.append(Finding("error", entry.id, field, f"{length} characters; Telegram sends at most "
                                                              f"{TELEGRAM_MESSAGE_LIMIT}"))
    return findings


def _validity(entry: Entry, today: date | None) -> list[Finding]:
    findings = []
    if entry.valid_from and entry.valid_until and entry.valid_until < entry.valid_from:
        findings.append(Finding("error", entry.id, "valid_until", "before valid_from"))
    if today is not None and entry.valid_until is not None and entry.valid_until < today:
        findings.append(Finding("warning", entry.id, "valid_until", f"expired on {entry.valid_until}"))
    return findings


# ---------------------------------------------------------------------------- Telegram HTML


class _TelegramHtml(HTMLParser):
    """Reads an answer the way Telegram's HTML parse mode does, noting what it would refuse."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.open: list[str] = []
        self.closed_early: list[str] = []  # tags whose end tag comes too late: reported once, not twice
        self.unsupported: set[str] = set()
        self.problems: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag not in TELEGRAM_TAGS:
            self.problems.append(f"<{tag}> is not supported by Telegram")
            self.unsupported.add(tag)
            return
        if tag == "a" and not attributes.get("href"):
            self.problems.append("<a> without href")
        if tag == "span" and attributes.get("class") != "tg-spoiler":
            self.problems.append('<span> is supported only as <span class="tg-spoiler">')
        self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.problems.append(f"<{tag}/> is not supported by Telegram")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.unsupported:
            return
        if tag in self.closed_early:
            self.closed_early.remove(tag)
            return
        if tag not in self.open:
            self.problems.append(f"</{tag}> without a matching <{tag}>")
            return
        while (last := self.open.pop()) != tag:
            self.problems.append(f"<{last}> is not closed before </{tag}>")
            self.closed_early.append(last)

    def handle_data(self, data: str) -> None:
        self.visible.append(data)
        for char, entity in (("<", "&lt;"), (">", "&gt;")):
            if char in data:
                self.problems.append(f"a bare {char!r} must be written {entity}")

    def handle_entityref(self, name: str) -> None:
        self.visible.append("&")  # one character, whatever it stands for

    def handle_charref(self, name: str) -> None:
        self.visible.append("&")

    def handle_comment(self, data: str) -> None:
        self.problems.append("HTML comments are not supported by Telegram")

    def handle_decl(self, decl: str) -> None:
        self.problems.append(f"<!{decl}> is not supported by Telegram")

    def handle_pi(self, data: str) -> None:
        self.problems.append(f"<?{data}> is not supported by Telegram")

    def unknown_decl(self, data: str) -> None:
        self.problems.append(f"<![{data}]> is not supported by Telegram")


def _parse_html(text: str) -> _TelegramHtml:
    parser = _TelegramHtml()
    parser.feed(text)
    parser.close()
    parser.problems += [f"<{tag}> is not closed" for tag in reversed(parser.open)]
    # Checked on the raw text: HTMLParser hides some bare "&" and Telegram wants &amp; in attributes too.
    parser.problems += [_ampersand_problem(match[1]) for match in _BAD_AMPERSAND.finditer(text)]
    return parser


def _ampersand_problem(name: str) -> str:
    if not name:
        return "a bare '&' must be written &amp;"
    return f"'&{name}' is not an entity Telegram knows; write a literal & as &amp;"


def telegram_html_problems(text: str) -> list[str]:
    """What Telegram's HTML parse mode would refuse in ``text`` (empty when it is fine)."""
    return list(dict.fromkeys(_parse_html(text).problems))


def telegram_length(text: str) -> int:
    """The length Telegram counts for ``text``: UTF-16 code units of the text its HTML shows."""
    visible = "".join(_parse_html(text).visible)
    return len(visible.encode("utf-16-le")) // 2


# ---------------------------------------------------------------------------- near duplicates


def comparable(text: str) -> str:
    """``text`` as near-duplicate detection compares it: NFKC, case-folded, words only."""
    return _NOT_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


_Phrasing = tuple[int, str, str]
"""(entry index, field, text) of one question or alternative."""


def near_duplicates(entries: Sequence[Entry], threshold: float = 90.0) -> list[Finding]:
    """A warning for each pair of entries with questions or alternatives at least ``threshold`` alike."""
    best: dict[tuple[int, int, str], tuple[float, _Phrasing, _Phrasing]] = {}
    for lang, phrasings in _phrasings(entries).items():
        for first, second, score in _similar_pairs(phrasings, threshold):
            first, second = sorted((first, second))
            key = (first[0], second[0], lang)
            if key not in best or score > best[key][0]:
                best[key] = (score, first, second)
    return [
        Finding("warning", entries[first].id, field,
                f"{text!r} is {score:.0f}% like {other!r} ({other_field} of {entries[second].id!r})")
        for (first, second, _), (score, (_, field, text), (_, other_field, other)) in sorted(best.items())
    ]


def _phrasings(entries: Sequence[Entry]) -> dict[str, list[_Phrasing]]:
    """Each language's questions and alternatives."""
    phrasings: dict[str, list[_Phrasing]] = {}
    for index, entry in enumerate(entries):
        for lang, question in entry.question.items():
            phrasings.setdefault(lang, []).append((index, f"question.{lang}", question))
        for lang, alternatives in entry.alternatives.items():
            phrasings.setdefault(lang, []).extend(
                (index, f"alternatives.{lang}[{i}]", text) for i, text in enumerate(alternatives))
    return phrasings


def _similar_pairs(phrasings: list[_Phrasing], threshold: float
                   ) -> Iterable[tuple[_Phrasing, _Phrasing, float]]:
    """Pairs of phrasings of different entries scoring at least ``threshold``, each pair once."""
    # ratio on pre-sorted words is token_sort_ratio without re-sorting the same words at every comparison.
    compared = sorted(((phrasing, " ".join(sorted(words))) for phrasing in phrasings
                       if (words := comparable(phrasing[2]).split())), key=lambda item: len(item[1]))
    texts = [text for _, text in compared]
    lengths = [len(text) for text in texts]
    for start in range(0, len(texts), _BLOCK_ROWS):
        rows = texts[start:start + _BLOCK_ROWS]
        # Texts are sorted by length, and the score is symmetric: compare each block only with the
        # texts after it that are short enough to reach the threshold.
        end = bisect.bisect_right(lengths, len(rows[-1]) * _length_reach(threshold))
        scores = process.cdist(rows, texts[start:end], scorer=fuzz.ratio, score_cutoff=threshold,
                               dtype=np.float32, workers=-1)
        for row, column in zip(*np.nonzero(scores >= threshold), strict=True):
            first, second = compared[start + int(row)][0], compared[start + int(column)][0]
            if row < column and first[0] != second[0]:
                yield first, second, float(scores[row, column])


def _length_reach(threshold: float) -> float:
    """How many times longer than another a text can be and still score ``threshold`` against it.

    ratio = 100 * (1 - distance / (a + b)) and distance >= b - a, so b <= a * (200 - threshold) / threshold.
    """
    return math.inf if threshold <= 0 else (200 - threshold) / threshold
