"""Reading and writing knowledge-base files: YAML, CSV (for spreadsheets) and JSON Lines.

YAML is the main format: top-level ``departments``, ``categories``, ``synonyms`` and ``entries``
(``knowledge/sample/`` shows them all). Plain scalars are read as text, so ``12345`` or ``no``
stay what was typed; dates are ``YYYY-MM-DD``. Several files, or folders read recursively
(*.yaml, *.yml, *.csv, *.jsonl in path order), merge into one :class:`KnowledgeBase`; files and
folders whose name starts with "." are skipped.

CSV has one row per entry and the columns ``id, category, department, question_<lang>,
alternatives_<lang>, answer_<lang>, keywords_<lang>, links, valid_from, valid_until,
auto_answer``; any language may have columns. List cells separate phrases with " | "
(a pipe between spaces), so a phrase cannot itself contain " | " or start or end with a pipe
next to a space. ``links`` is JSON (``[{"url": ..., "title": {"en": ...}}]``) or empty. Files
must be UTF-8 (a BOM is fine); categories, departments and synonyms live in YAML files.

JSON Lines has one object per line: an entry (the keys of ``Entry.to_dict()``), the evaluation
format (``question``/``answer`` as plain text plus ``lang``; ``source`` is ignored), or a line
with ``"kind": "department"`` (code, name), ``"category"`` (code, name, auto_answer) or
``"synonyms"`` (terms). Blank lines are skipped.

Text is stripped, line breaks become "\\n" and control characters are dropped; empty texts
and lists are left out. Loading checks everything and reports every problem at once.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import yaml

try:  # libyaml's parser reads about ten times faster; PyYAML's own is the fallback
    from yaml import CSafeLoader as _SafeLoader
except ImportError:  # pragma: no cover - PyYAML built without libyaml
    from yaml import SafeLoader as _SafeLoader  # type: ignore[assignment]
from knowledge.entry import LANGUAGES, Category, DepartmentRef, Entry, KnowledgeBase, Link

Format = Literal["yaml", "csv", "jsonl"]
SUFFIXES: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".jsonl": "jsonl"}
ID_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]*")
MAX_ID_LENGTH = 48
LANGUAGE_PATTERN = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*")
ENTRY_FIELDS = tuple(field.name for field in dataclasses.fields(Entry))
LOCALIZED_COLUMNS = ("question", "alternatives", "answer", "keywords")
PLAIN_COLUMNS = ("id", "category", "department", "links", "valid_from", "valid_until", "auto_answer")

_T = TypeVar("_T")
_LINE_BREAK = re.compile(r"\r\n|[\r\x85\u2028\u2029]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x84\x86-\x9f]")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_PHRASE_SEPARATOR = re.compile(r"\s+\|\s+")
_LONE_PIPE = re.compile(r"(?:^|\s)\|(?:\s|$)")
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_MAX_DEPTH = 50
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


class KnowledgeFileError(Exception):
    """One problem in a knowledge-base file, with where it is."""

    def __init__(self, path: str, line: int | None, field: str | None, message: str) -> None:
        super().__init__(path, line, field, message)
        self.path = path
        self.line = line
        self.field = field
        self.message = message

    def __str__(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


class KnowledgeLoadError(Exception):
    """Every problem found while loading, so staff can fix them all in one go."""

    def __init__(self, errors: Sequence[KnowledgeFileError]) -> None:
        super().__init__(list(errors))
        self.errors = list(errors)

    def __str__(self) -> str:
        lines = [f"{len(self.errors)} problem(s) in the knowledge base:"]
        return "\n".join(lines + [f"  {error}" for error in self.errors])


@dataclass(frozen=True)
class Location:
    """Where something was defined: a file and, when known, a line."""

    path: str
    line: int | None = None

    def __str__(self) -> str:
        return self.path if self.line is None else f"{self.path}:{self.line}"


SourceMap = dict[str, Location]
"""Where each entry (by id) was defined."""


def phrase_fits_csv(phrase: str) -> bool:
    """Whether a phrase survives a CSV list cell (it has no pipe standing alone between spaces)."""
    return not _LONE_PIPE.search(phrase)


def clean_text(value: str) -> str:
    """The stored form of a text: "\\n" line breaks, no control characters, stripped."""
    return _CONTROL.sub("", _LINE_BREAK.sub("\n", value)).strip()


# ---------------------------------------------------------------------------- public API


def load_paths_with_sources(paths: Sequence[str | Path]) -> tuple[KnowledgeBase, SourceMap]:
    """Load and merge files and folders, and say where each entry came from."""
    errors: list[KnowledgeFileError] = []
    readers = [_read_file(path) for path in _expand(paths, errors)]
    kb, sources = _merge(readers, errors)
    if errors:
        raise KnowledgeLoadError(errors)
    return kb, sources


def load_paths(paths: Sequence[str | Path]) -> KnowledgeBase:
    """Load and merge files and folders; raise :class:`KnowledgeLoadError` listing all problems."""
    return load_paths_with_sources(paths)[0]


def load_file(path: str | Path) -> KnowledgeBase:
    """Load one file (or folder)."""
    return load_paths([path])


def loads(text: str, fmt: Format, *, path: str = "<string>") -> KnowledgeBase:
    """Load a knowledge base from text in ``fmt``; ``path`` only names it in errors."""
    reader = _parse(text, fmt, path)
    errors: list[KnowledgeFileError] = []
    kb, _ = _merge([reader], errors)
    if errors:
        raise KnowledgeLoadError(errors)
    return kb


def dumps(kb: KnowledgeBase, fmt: Format, *, path: str = "<string>") -> str:
    """The knowledge base as text in ``fmt`` (CSV holds only the entries)."""
    if fmt == "yaml":
        return dumps_yaml(kb)
    if fmt == "csv":
        return dumps_csv(kb, path=path)
    if fmt == "jsonl":
        return dumps_jsonl(kb)
    raise ValueError(f"unknown knowledge-base format {fmt!r}; expected yaml, csv or jsonl")


def dump(kb: KnowledgeBase, out: str | Path, fmt: Format) -> None:
    """Write the knowledge base to ``out`` in ``fmt`` (CSV holds only the entries)."""
    text = dumps(kb, fmt, path=str(out))
    # The BOM makes Excel open the CSV as UTF-8 instead of the system code page.
    encoding = "utf-8-sig" if fmt == "csv" else "utf-8"
    Path(out).write_text(text, encoding=encoding, newline="")


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


def dumps_jsonl(kb: KnowledgeBase) -> str:
    """JSON Lines: departments, categories and synonyms as "kind" lines, then one line per entry."""
    lines = [{"kind": "department", **department.to_dict()} for department in kb.departments]
    lines += [{"kind": "category", **category.to_dict()} for category in kb.categories]
    lines += [{"kind": "synonyms", "terms": list(group)} for group in kb.synonyms]
    lines += [entry.to_dict() for entry in kb.entries]
    return "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)


def dumps_csv(kb: KnowledgeBase, *, path: str = "<csv>") -> str:
    """CSV of the entries; raise :class:`KnowledgeFileError` for a phrase CSV cannot hold."""
    languages = _csv_languages(kb.entries)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_csv_header(languages))
    for entry in kb.entries:
        writer.writerow(_csv_row(entry, languages, path))
    return out.getvalue()


# ---------------------------------------------------------------------------- files and merging


def _expand(paths: Sequence[str | Path], errors: list[KnowledgeFileError]) -> list[Path]:
    """The knowledge-base files named by ``paths``, folders expanded, each once."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(
                file for file in path.rglob("*")
                if file.suffix.lower() in SUFFIXES and file.is_file()
                and not any(part.startswith(".") for part in file.relative_to(path).parts)
            )
            if not found:
                errors.append(KnowledgeFileError(str(path), None, None, "no knowledge-base files "
                                                 "(*.yaml, *.yml, *.csv, *.jsonl) in this folder"))
            files += found
        elif not path.exists():
            errors.append(KnowledgeFileError(str(path), None, None, "no such file or folder"))
        elif path.suffix.lower() not in SUFFIXES:
            errors.append(KnowledgeFileError(str(path), None, None,
                                             "unknown format; expected .yaml, .yml, .csv or .jsonl"))
        else:
            files.append(path)
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)  # a file named both directly and in a folder
    return list(unique.values())


def _read_file(path: Path) -> _Reader:
    """Parse one file; problems go into the returned reader."""
    fmt = SUFFIXES[path.suffix.lower()]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reader = _Reader(str(path))
        reader.error(None, None, f"cannot read: {exc.strerror or exc}")
        return reader
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        reader = _Reader(str(path))
        reader.error(raw.count(b"\n", 0, exc.start) + 1, None, _not_utf8(raw[exc.start], fmt))
        return reader
    return _parse(text, fmt, str(path))


def _not_utf8(byte: int, fmt: Format) -> str:
    hint = " (Excel: Save As, 'CSV UTF-8')" if fmt == "csv" else ""
    return (f"not valid UTF-8 (byte 0x{byte:02x}); the file is probably in another encoding such as "
            f"GBK/GB18030 or Windows-1252; re-save it as UTF-8{hint}")


def _parse(text: str, fmt: Format, path: str) -> _Reader:
    reader = _Reader(path)
    text = text.removeprefix("\ufeff")
    if fmt == "yaml":
        _read_yaml(reader, text)
    elif fmt == "csv":
        _read_csv(reader, text)
    else:
        _read_jsonl(reader, text)
    return reader


def _merge(readers: Sequence[_Reader], errors: list[KnowledgeFileError]) -> tuple[KnowledgeBase, SourceMap]:
    """One knowledge base from several files; ids and codes must be unique across all of them."""
    kb = KnowledgeBase()
    sources: SourceMap = {}
    departments: dict[str, Location] = {}
    categories: dict[str, Location] = {}
    for reader in readers:
        errors += sorted(reader.errors, key=lambda error: error.line or 0)
        for entry, line in reader.entries:
            if _first(sources, entry.id, Location(reader.path, line), "id", errors):
                kb.entries.append(entry)
        for department, line in reader.departments:
            if _first(departments, department.code, Location(reader.path, line), "department code", errors):
                kb.departments.append(department)
        for category, line in reader.categories:
            if _first(categories, category.code, Location(reader.path, line), "category code", errors):
                kb.categories.append(category)
        kb.synonyms += reader.synonyms
    return kb, sources


def _first(seen: dict[str, Location], key: str, here: Location, what: str,
           errors: list[KnowledgeFileError]) -> bool:
    """Whether ``key`` is new; if not, an error at ``here`` naming where it was first defined."""
    first = seen.setdefault(key, here)
    if first is not here:
        field = what.split()[-1]  # "id", or "code" of "department code"
        errors.append(KnowledgeFileError(here.path, here.line, field,
                                         f"duplicate {what} {key!r}: already defined at {first}"))
    return first is here


# ---------------------------------------------------------------------------- validation


class _Mapping(dict[Any, Any]):
    """A YAML mapping that remembers its line and the line of each key and value."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: dict[str, int] = {}
        self.key_lines: dict[str, int] = {}


class _Sequence(list[Any]):
    """A YAML sequence that remembers its line and the line of each item."""

    def __init__(self, line: int) -> None:
        super().__init__()
        self.line = line
        self.lines: list[int] = []


def _line_of(container: object, key: object, fallback: int | None) -> int | None:
    """The line of ``container[key]`` when the container came from YAML, else ``fallback``."""
    if isinstance(container, _Mapping):
        return container.lines.get(str(key), container.line)
    if isinstance(container, _Sequence):
        if isinstance(key, int) and key < len(container.lines):
            return container.lines[key]
        return container.line
    return fallback


def _key_line_of(container: object, key: object, fallback: int | None) -> int | None:
    """The line of ``key`` itself when the container came from YAML, else ``fallback``."""
    if isinstance(container, _Mapping):
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


class _Reader:
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
        code = self.text(value, line, field)
        if not code and (value is None or isinstance(value, str)):
            self.error(line, field, "missing")
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
            category=self.get(value, "category", line, self.text),
            department=self.get(value, "department", line, self.text),
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
            department = DepartmentRef(code=self.get(value, "code", line, self.code),
                                       name=self.get(value, "name", line, self.localized))
            if len(self.errors) == before:
                self.departments.append((department, line))

    def category(self, value: Any, line: int | None) -> None:
        if self.mapping(value, line, "a category", ("code", "name", "auto_answer")):
            before = len(self.errors)
            category = Category(code=self.get(value, "code", line, self.code),
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


_SECTIONS: dict[str, Callable[[_Reader, Any, int | None], None]] = {
    "departments": _Reader.department,
    "categories": _Reader.category,
    "synonyms": _Reader.synonym_group,
    "entries": _Reader.entry,
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


# ---------------------------------------------------------------------------- YAML

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

    def construct_lined_map(self, node: yaml.MappingNode) -> Iterator[_Mapping]:
        data = _Mapping(node.start_mark.line + 1)
        yield data
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in data.lines and key != "<<":
                self.repeated_keys.append((key_node.start_mark.line + 1, key))
            data.lines[key] = value_node.start_mark.line + 1
            data.key_lines[key] = key_node.start_mark.line + 1
        data.update(self.construct_mapping(node))

    def construct_lined_seq(self, node: yaml.SequenceNode) -> Iterator[_Sequence]:
        data = _Sequence(node.start_mark.line + 1)
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


def _read_yaml(reader: _Reader, text: str) -> None:
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


# ---------------------------------------------------------------------------- JSON Lines

def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for key, value in pairs:
        if key in data:
            raise ValueError(f"the key {key!r} appears twice")
        data[key] = value
    return data


def _read_jsonl(reader: _Reader, text: str) -> None:
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


# ---------------------------------------------------------------------------- CSV

def _read_csv(reader: _Reader, text: str) -> None:
    rows = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(rows, None)
        columns = _csv_columns(reader, header) if header is not None else None
        if columns is None:
            return
        start = rows.line_num + 1
        for row in rows:
            if any(cell.strip() for cell in row):
                _read_csv_row(reader, columns, row, start)
            start = rows.line_num + 1
    except csv.Error as exc:
        reader.error(rows.line_num, None, f"malformed CSV: {exc}")


def _csv_columns(reader: _Reader, header: list[str]) -> list[tuple[str, str | None]] | None:
    """Each column as (field, language or None); None when the header is unusable."""
    before = len(reader.errors)
    columns: list[tuple[str, str | None]] = []
    for name in (cell.strip() for cell in header):
        prefix, _, lang = name.partition("_")
        if name.lower() in PLAIN_COLUMNS:
            columns.append((name.lower(), None))
        elif prefix.lower() in LOCALIZED_COLUMNS and LANGUAGE_PATTERN.fullmatch(lang):
            columns.append((prefix.lower(), lang))
        else:
            reader.error(1, name, f"unknown column; expected {', '.join(PLAIN_COLUMNS)} or "
                                  f"question_<lang>, alternatives_<lang>, answer_<lang>, keywords_<lang>")
        if columns and columns.count(columns[-1]) > 1:
            reader.error(1, name, "this column appears twice")
    if ("id", None) not in columns:
        reader.error(1, "id", "the header has no id column")
    return columns if len(reader.errors) == before else None


def _read_csv_row(reader: _Reader, columns: list[tuple[str, str | None]], row: list[str], line: int) -> None:
    if len(row) != len(columns):
        reader.error(line, None, f"this row has {len(row)} cells but the header has {len(columns)} columns")
        return
    before = len(reader.errors)
    data: dict[str, Any] = {}
    for (name, lang), cell in zip(columns, row, strict=True):
        if lang is None:
            data[name] = _csv_cell(reader, name, cell.strip(), line)
        elif name in ("alternatives", "keywords"):
            data.setdefault(name, {})[lang] = _PHRASE_SEPARATOR.split(cell.strip())
        else:
            data.setdefault(name, {})[lang] = cell
    if len(reader.errors) == before:
        reader.entry(data, line)


def _csv_cell(reader: _Reader, name: str, cell: str, line: int) -> Any:
    """A plain column's cell as the value an entry dict would hold."""
    if name != "links":
        return cell
    if not cell:
        return None
    try:
        return json.loads(cell)
    except (ValueError, RecursionError):
        reader.error(line, name, 'expected JSON, e.g. [{"url": "https://...", "title": {"en": "..."}}]')
        return None


def _csv_languages(entries: Sequence[Entry]) -> list[str]:
    seen = {lang for entry in entries
            for texts in (entry.question, entry.alternatives, entry.answer, entry.keywords) for lang in texts}
    return list(LANGUAGES) + sorted(seen - set(LANGUAGES))


def _csv_header(languages: Sequence[str]) -> list[str]:
    localized = [f"{name}_{lang}" for name in LOCALIZED_COLUMNS for lang in languages]
    return ["id", "category", "department", *localized, "links", "valid_from", "valid_until", "auto_answer"]


def _csv_row(entry: Entry, languages: Sequence[str], path: str) -> list[str]:
    cells = [entry.id, entry.category, entry.department]
    cells += [entry.question.get(lang, "") for lang in languages]
    cells += [_csv_phrases(entry, "alternatives", lang, path) for lang in languages]
    cells += [entry.answer.get(lang, "") for lang in languages]
    cells += [_csv_phrases(entry, "keywords", lang, path) for lang in languages]
    links = entry.to_dict().get("links")
    cells.append(json.dumps(links, ensure_ascii=False) if links else "")
    cells += [day.isoformat() if day else "" for day in (entry.valid_from, entry.valid_until)]
    cells.append("true" if entry.auto_answer else "false")
    return cells


def _csv_phrases(entry: Entry, name: Literal["alternatives", "keywords"], lang: str, path: str) -> str:
    phrases: list[str] = getattr(entry, name).get(lang, [])
    for phrase in phrases:
        if not phrase_fits_csv(phrase):
            raise KnowledgeFileError(path, None, f"{entry.id}: {name}.{lang}",
                                     f"{phrase!r} has a '|' between spaces, which CSV uses to separate "
                                     f"phrases; keep this entry in YAML or JSON Lines")
    return " | ".join(phrases)
