"""CSV for spreadsheets: one row per entry; categories, departments and synonyms live in YAML files.

The columns are ``id, category, department, question_<lang>, alternatives_<lang>, answer_<lang>,
keywords_<lang>, links, valid_from, valid_until, auto_answer``; any language may have columns. List cells
separate phrases with " | " (a pipe between spaces), so a phrase cannot itself contain " | " or start or
end with a pipe next to a space. ``links`` is JSON (``[{"url": ..., "title": {"en": ...}}]``) or empty.
Files must be UTF-8 (a BOM is fine). A column with no name in the header (the empty columns a spreadsheet
saves past the last one used) is skipped while its cells are blank. Cells are separated by commas, or by
semicolons or tabs when the header line has no comma (Excel's CSV in many European locales); export writes
commas.

Cells are written as text a spreadsheet does not run (:mod:`knowledge.formats.formulas`): quoted, and behind
a ``'`` when they would begin a formula, such as an answer that begins with ``-`` or ``+``. Reading drops that
``'`` again, so an export reads back exactly; a cell typed ``'-list`` in a spreadsheet reads as ``-list``.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from knowledge.entry import LANGUAGES, Entry, KnowledgeBase
from knowledge.formats.errors import KnowledgeFileError
from knowledge.formats.formulas import neutralise, restore
from knowledge.formats.reader import LANGUAGE_PATTERN, Reader

LOCALIZED_COLUMNS = ("question", "alternatives", "answer", "keywords")
PLAIN_COLUMNS = ("id", "category", "department", "links", "valid_from", "valid_until", "auto_answer")
_PHRASE_SEPARATOR = re.compile(r"(?<!\S)\|(?!\S)")  # a pipe standing alone, also at either end of the cell
_LONE_PIPE = re.compile(r"(?:^|\s)\|(?:\s|$)")
_LINE_END = re.compile(r"[\r\n]")  # each ends a row for the csv module


def phrase_fits_csv(phrase: str) -> bool:
    """Whether a phrase survives a CSV list cell (it has no pipe standing alone between spaces)."""
    return not _LONE_PIPE.search(phrase)


def dumps_csv(kb: KnowledgeBase, *, path: str = "<csv>") -> str:
    """CSV of the entries; raise :class:`KnowledgeFileError` for a phrase CSV cannot hold."""
    languages = _csv_languages(kb.entries)
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(_csv_header(languages))
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_ALL)
    for entry in kb.entries:
        writer.writerow([neutralise(cell) for cell in _csv_row(entry, languages, path)])
    return out.getvalue()


def read_csv(reader: Reader, text: str) -> None:
    # The csv module refuses a cell over 128 KiB by default, which the export writes for an entry with
    # thousands of phrasings; the whole text is in memory already, so no cell can be longer than it.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    rows = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text), strict=True)
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


def _delimiter(text: str) -> str:
    """The header line's separator: a comma, else a semicolon or tab that splits it into several names.

    Read with commas, such a header line is one cell, and no column's name holds a semicolon or tab between
    two words: every file that could be read before is read as before.
    """
    line = _LINE_END.split(text, maxsplit=1)[0]
    if "," not in line:
        for delimiter in (";", "\t"):
            names = next(csv.reader([line], delimiter=delimiter), [])
            if sum(1 for name in names if name.strip()) > 1:
                return delimiter
    return ","


def _csv_columns(reader: Reader, header: list[str]) -> list[tuple[str, str | None]] | None:
    """Each column as (field, language or None); None when the header is unusable."""
    before = len(reader.errors)
    columns: list[tuple[str, str | None]] = []
    for name in (cell.strip() for cell in header):
        prefix, _, lang = name.partition("_")
        if not name:  # spreadsheets save the empty columns past the last one used: only blanks may be in it
            columns.append(("", None))
            continue
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


def _read_csv_row(reader: Reader, columns: list[tuple[str, str | None]], row: list[str], line: int) -> None:
    if len(row) != len(columns):
        reader.error(line, None, f"this row has {len(row)} cells but the header has {len(columns)} columns")
        return
    before = len(reader.errors)
    data: dict[str, Any] = {}
    for number, ((name, lang), cell) in enumerate(zip(columns, map(restore, row), strict=True), start=1):
        if not name:
            if cell.strip():
                reader.error(line, f"column {number}", "a cell in a column with no name in the header")
        elif lang is None:
            data[name] = _csv_cell(reader, name, cell.strip(), line)
        elif name in ("alternatives", "keywords"):
            data.setdefault(name, {})[lang] = [phrase.strip() for phrase in _PHRASE_SEPARATOR.split(cell)]
        else:
            data.setdefault(name, {})[lang] = cell
    if len(reader.errors) == before:
        reader.entry(data, line)


def _csv_cell(reader: Reader, name: str, cell: str, line: int) -> Any:
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
