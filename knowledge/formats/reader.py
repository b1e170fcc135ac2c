"""Parsed YAML, JSON or CSV values checked and turned into model objects, every problem with its line.

Text is stripped, line breaks become "\\n" and control characters are dropped; empty texts and lists are
left out.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Collection
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from knowledge.entry import Category, DepartmentRef, Entry, Link
from knowledge.formats.errors import KnowledgeFileError

ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_ID_LENGTH = 48
_Read = Callable[[Any, int | None, str], str]
MAX_CODE_LENGTH = {"department": 50, "category": 100}
"""How long a department's or category's code may be: what the database keeps (storage/models.py)."""
DEPARTMENT_CODE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
"""A department's code, as ``govbot departments add`` takes it: the department API transfers only to such
a code, and the citizen's "withdraw consent" button carries it."""
MAX_CATEGORY_CODE_BYTES = 48
"""How long a category's code may be where it is defined, in bytes of UTF-8: the topic menu's and the
escalation's buttons carry it in Telegram's 64 bytes of callback data (``esc:cat:<nonce>:<code>``)."""
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
ENTRY_FIELDS = tuple(field.name for field in dataclasses.fields(Entry))

_T = TypeVar("_T")
_LINE_BREAK = re.compile(r"\r\n|[\r\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def clean_text(value: str) -> str:
    """The stored form of a text: "\\n" line breaks, no control characters, stripped."""
    return _CONTROL.sub("", _LINE_BREAK.sub("\n", value)).strip()


class YamlMapping(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key and value."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}
        self.key_lines: dict[str, int] = {}


class YamlSequence(list[Any]):
    """A YAML sequence that remembers its line and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


def _line_of(container: object, key: object, fallback: int | None) -> int | None:
    """The line of ``container[key]`` when the container came from YAML, else ``fallback``."""
    if isinstance(container, YamlMapping):
        return container.lines.get(str(key), container.line)
    if isinstance(container, YamlSequence):
        if isinstance(key, int) and key < len(container.lines):
            return container.lines[key]
        return container.line
    return fallback


def _key_line_of(container: object, key: object, fallback: int | None) -> int | None:
    """The line of ``key`` itself when the container came from YAML, else ``fallback``."""
    if isinstance(container, YamlMapping):
        return container.key_lines.get(str(key), container.line)
    return fallback


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    names: dict[type, str] = {dict: "a mapping", list: "a list", str: "text"}
    return next((name for kind, name in names.items() if isinstance(value, kind)), type(value).__name__)


def _is_web_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.netloc) and not re.search(r"\s", url)


class Reader:
    """Turns parsed YAML, JSON or CSV values into model objects, noting every problem and its line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.errors: list[KnowledgeFileError] = []
        self.entries: list[tuple[Entry, int | None]] = []
        self.departments: list[tuple[DepartmentRef, int | None]] = []
        self.categories: list[tuple[Category, int | None]] = []
        self.synonyms: list[list[str]] = []

    def error(self, line: int | None, field: str | None, message: str) -> None:
        self.errors.append(KnowledgeFileError(self.path, line, field, message))

    def get(self, data: dict[Any, Any], name: str, line: int | None,
            convert: Callable[[Any, int | None, str], _T]) -> _T:
        """``data[name]`` converted, with problems reported at its line."""
        return convert(data.get(name), _line_of(data, name, line), name)

    def text(self, value: Any, line: int | None, field: str) -> str:
        if value is None:
            return ""
        if isinstance(value, str) and (half := _SURROGATE.search(value)):
            # JSON's "\\ud83d" escapes half an emoji (text cut mid-character); no file or database holds it.
            self.error(line, field, f"half of a character (U+{ord(half[0]):04X}, half a surrogate pair): "
                                    f"the text was cut or mis-encoded where it came from")
            return ""
        if isinstance(value, str):
            return clean_text(value)
        self.error(line, field, f"expected text, got {_kind(value)}")
        return ""

    def texts(self, value: Any, line: int | None, field: str) -> list[str]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(line, field, f"expected a list of texts, got {_kind(value)}")
            return []
        items = (self.text(item, _line_of(value, i, line), f"{field}[{i}]") for i, item in enumerate(value))
        return [item for item in items if item]

    def per_language(self, value: Any, line: int | None, field: str,
                     convert: Callable[[Any, int | None, str], _T]) -> dict[str, _T]:
        """A mapping of language code to converted values; empty values are left out."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(line, field, f"expected a mapping of language code to values (e.g. en: ...), "
                                    f"got {_kind(value)}")
            return {}
        result: dict[str, _T] = {}
        for lang, item in value.items():
            item_line = _line_of(value, lang, line)
            if not (isinstance(lang, str) and LANGUAGE_PATTERN.fullmatch(lang)):
                self.error(item_line, field, f"{lang!r} is not a language code (e.g. en, zh, zh-Hant, und)")
                continue
            converted = convert(item, item_line, f"{field}.{lang}")
            if converted:
                result[lang] = converted
        return result

    def localized(self, value: Any, line: int | None, field: str) -> dict[str, str]:
        return self.per_language(value, line, field, self.text)

    def phrases(self, value: Any, line: int | None, field: str) -> dict[str, list[str]]:
        return self.per_language(value, line, field, self.texts)

    def day(self, value: Any, line: int | None, field: str) -> date | None:
        if value is None or value == "":
            return None
        if isinstance(value, date) and not isinstance(value, datetime):
            return value
        if isinstance(value, str) and _DATE.fullmatch(value.strip()):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        self.error(line, field, f"{value!r} is not a date; write YYYY-MM-DD")
        return None

    def flag(self, value: Any, line: int | None, field: str) -> bool:
        if value is None or isinstance(value, bool):
            return value is not False
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE | {""}:
            return value.strip().lower() not in _FALSE
        self.error(line, field, f"expected true or false, got {value!r}")
        return True

    def code(self, value: Any, line: int | None, field: str) -> str:
        before = len(self.errors)
        code = self.text(value, line, field)
        if not code and len(self.errors) == before:
            self.error(line, field, "missing")
        return code

    def bounded(self, read: _Read, kind: str) -> _Read:
        """``read`` (a code, or a text naming one) refusing what is longer than ``kind``'s codes may be."""

        def fitting(value: Any, line: int | None, field: str) -> str:
            code = read(value, line, field)
            if len(code) > MAX_CODE_LENGTH[kind]:
                self.error(line, field, f"{code[:60]!r} is longer than {MAX_CODE_LENGTH[kind]} characters")
            return code

        return fitting

    def department_code(self, value: Any, line: int | None, field: str) -> str:
        code = self.code(value, line, field)
        if code and not DEPARTMENT_CODE_PATTERN.fullmatch(code):
            self.error(line, field, f"{code[:60]!r} is not a department code: use letters, digits, '_', '-' "
                                    f"and '.', starting with a letter or digit (e.g. TAX, civil-registry)")
        return code

    def category_code(self, value: Any, line: int | None, field: str) -> str:
        """A category's code where it is defined: short enough for the buttons that carry it."""
        code = self.code(value, line, field)
        if len(code.encode()) > MAX_CATEGORY_CODE_BYTES:
            unit = "characters" if code.isascii() else "bytes of UTF-8 (a Chinese character takes 3)"
            self.error(line, field, f"{code[:60]!r} is longer than {MAX_CATEGORY_CODE_BYTES} {unit}, "
                                    f"which is what a button can carry")
        return code

    def entry_id(self, value: Any, line: int | None, field: str) -> str:
        entry_id = self.code(value, line, field)
        if entry_id and not ID_PATTERN.fullmatch(entry_id):
            self.error(line, field, f"{entry_id!r} is not a valid id: use lowercase letters, digits, '.', "
                                    f"'_' and '-', starting with a letter or digit")
        elif len(entry_id) > MAX_ID_LENGTH:
            # Buttons carry the id in Telegram's 64-byte callback data.
            self.error(line, field, f"{entry_id!r} is longer than {MAX_ID_LENGTH} characters")
        return entry_id

    def links(self, value: Any, line: int | None, field: str) -> list[Link]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.error(line, field, f"expected a list of links (url, title), got {_kind(value)}")
            return []
        links = (self.link(item, _line_of(value, i, line), f"{field}[{i}]") for i, item in enumerate(value))
        return [link for link in links if link is not None]

    def link(self, value: Any, line: int | None, field: str) -> Link | None:
        if not self.mapping(value, line, field, ("url", "title")):
            return None
        url = self.get(value, "url", line, self.text)
        if not _is_web_url(url):
            self.error(_line_of(value, "url", line), f"{field}.url",
                       f"{url!r} is not an http(s) URL" if url else "missing")
        title = self.localized(value.get("title"), _line_of(value, "title", line), f"{field}.title")
        return Link(url=url, title=title)

    def mapping(self, value: Any, line: int | None, what: str, known: Collection[str]) -> bool:
        """Whether ``value`` is a mapping; report it if not, and report keys not in ``known``."""
        if not isinstance(value, dict):
            self.error(line, None, f"{what} must be a mapping of fields, got {_kind(value)}")
            return False
        for key in value:
            if key not in known:
                self.error(_key_line_of(value, key, line), str(key),
                           f"unknown field; expected one of: {', '.join(known)}")
        return True

    def entry(self, value: Any, line: int | None) -> None:
        if not self.mapping(value, line, "an entry", ENTRY_FIELDS):
            return
        before = len(self.errors)
        entry = Entry(
            id=self.get(value, "id", line, self.entry_id),
            category=self.get(value, "category", line, self.bounded(self.text, "category")),
            department=self.get(value, "department", line, self.bounded(self.text, "department")),
            question=self.get(value, "question", line, self.localized),
            alternatives=self.get(value, "alternatives", line, self.phrases),
            answer=self.get(value, "answer", line, self.localized),
            keywords=self.get(value, "keywords", line, self.phrases),
            links=self.get(value, "links", line, self.links),
            valid_from=self.get(value, "valid_from", line, self.day),
            valid_until=self.get(value, "valid_until", line, self.day),
            auto_answer=self.get(value, "auto_answer", line, self.flag),
        )
        if entry.valid_from and entry.valid_until and entry.valid_until < entry.valid_from:
            self.error(_line_of(value, "valid_until", line), "valid_until",
                       f"{entry.valid_until} is before valid_from {entry.valid_from}")
        if len(self.errors) == before:
            self.entries.append((entry, line))

    def department(self, value: Any, line: int | None) -> None:
        if self.mapping(value, line, "a department", ("code", "name")):
            before = len(self.errors)
            code = self.get(value, "code", line, self.bounded(self.department_code, "department"))
            department = DepartmentRef(code=code,
                                       name=self.get(value, "name", line, self.localized))
            if len(self.errors) == before:
                self.departments.append((department, line))

    def category(self, value: Any, line: int | None) -> None:
        if self.mapping(value, line, "a category", ("code", "name", "auto_answer")):
            before = len(self.errors)
            category = Category(code=self.get(value, "code", line, self.category_code),
                                name=self.get(value, "name", line, self.localized),
                                auto_answer=self.get(value, "auto_answer", line, self.flag))
            if len(self.errors) == before:
                self.categories.append((category, line))

    def synonym_group(self, value: Any, line: int | None) -> None:
        before = len(self.errors)
        terms = self.texts(value, line, "synonyms")
        if len(self.errors) == before and len(terms) < 2:
            self.error(line, "synonyms", "a synonym group needs at least two terms")
        elif len(self.errors) == before:
            self.synonyms.append(terms)

    def document(self, data: Any) -> None:
        """A whole YAML file: the top-level sections."""
        if data is None:
            return
        if not isinstance(data, dict):
            self.error(_line_of(data, 0, 1), None, f"expected a mapping with {', '.join(_SECTIONS)}, "
                                                   f"got {_kind(data)}")
            return
        for key, items in data.items():
            line = _line_of(data, key, 1)
            read = _SECTIONS.get(key)
            if read is None:
                self.error(_key_line_of(data, key, line), str(key),
                           f"unknown top-level key; expected one of: {', '.join(_SECTIONS)}")
            elif isinstance(items, list):
                for i, item in enumerate(items):
                    read(self, item, _line_of(items, i, line))
            elif items is not None:
                self.error(line, str(key), f"expected a list, got {_kind(items)}")

    def json_line(self, data: Any, line: int) -> None:
        """One JSON Lines object: an entry (full or evaluation format) or a "kind" line."""
        if not isinstance(data, dict):
            self.error(line, None, f"expected a JSON object, got {_kind(data)}")
            return
        data = dict(data)
        kind = data.pop("kind", "entry")
        if kind == "synonyms":
            if self.mapping(data, line, "a synonyms line", ("terms",)):
                self.synonym_group(data.get("terms"), line)
        elif kind == "department":
            self.department(data, line)
        elif kind == "category":
            self.category(data, line)
        elif kind != "entry":
            self.error(line, "kind", f"unknown kind {kind!r}; expected entry, department, category, synonyms")
        elif "lang" not in data:
            self.entry(data, line)
        elif isinstance(data["lang"], str) and LANGUAGE_PATTERN.fullmatch(data["lang"]):
            self.entry(_from_evaluation_format(data), line)
        else:
            self.error(line, "lang", f"{data['lang']!r} is not a language code (e.g. en, zh, und)")


_SECTIONS: dict[str, Callable[[Reader, Any, int | None], None]] = {
    "departments": Reader.department,
    "categories": Reader.category,
    "synonyms": Reader.synonym_group,
    "entries": Reader.entry,
}


def _from_evaluation_format(data: dict[str, Any]) -> dict[str, Any]:
    """An entry dict from the evaluation set's one-language form (plain texts plus "lang")."""
    lang = data.pop("lang")
    data.pop("source", None)
    for name in ("question", "answer"):
        if isinstance(data.get(name), str):
            data[name] = {lang: data[name]}
    for name in ("alternatives", "keywords"):
        if isinstance(data.get(name), list):
            data[name] = {lang: data[name]}
    return data
