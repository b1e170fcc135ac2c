"""Output of the staff commands: aligned text tables (CJK-aware), CSV with a header row, or JSON."""

from __future__ import annotations

import argparse
import csv
import io
import json
import re
import unicodedata
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from knowledge.formats.formulas import neutralise

FORMATS = ("table", "csv", "json")
CELL_WIDTH = 60
"""Table cells are cut to this many columns (a Chinese character takes two)."""
_DURATION = re.compile(r"^([0-9]{1,5})([hdw])$")  # ASCII digits only, as storage.numbers reads them
_UNITS = {"h": "hours", "d": "days", "w": "weeks"}

Row = Sequence[Any]


def add_format(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="table (default), csv with a header row, or json"
    )


def since_argument(text: str) -> timedelta | datetime:
    """``7d``, ``24h``, ``2w`` (a period before now) or an ISO date or time.

    A time with an offset comes back in UTC; one without comes back naive, as it means the service desk's
    clock (``GOVBOT_TIMEZONE``), which :func:`window_start` is given once the settings are read."""
    value = text.strip().lower()
    found = _DURATION.match(value)
    if found:
        return timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.astimezone(UTC) if moment.tzinfo else moment
    except (ValueError, OverflowError):  # not a date, or an offset that carries it past year 1 or 9999
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a period like 7d, 24h or 2w, nor an ISO date like 2026-11-01"
        ) from None


def utc_moment(text: str) -> datetime | None:
    """An ISO date or time (UTC unless it says otherwise) in UTC, as the database keeps times; None for
    anything else, or for a time the offset carries past year 1 or 9999."""
    try:
        moment = datetime.fromisoformat(text.strip())
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


def window_start(since: timedelta | datetime, now: datetime, zone: tzinfo = UTC) -> datetime:
    """The moment (UTC) a report starts at; a date or time without an offset is read on ``zone``'s clock."""
    if isinstance(since, timedelta):
        return now - since
    try:
        return (since if since.tzinfo else since.replace(tzinfo=zone)).astimezone(UTC)
    except OverflowError:  # a time in year 1 or 9999 that UTC puts outside the calendar: as far as it goes
        return (datetime.min if since.year == 1 else datetime.max).replace(tzinfo=UTC)


def render_json(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=2, default=_json_default)


def render_csv(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """A header row, then the rows: numbers bare, every other cell quoted text that no spreadsheet runs.

    Quoted, a citizen's ``a;=1+1`` stays one cell where the list separator is ``;``, and a carriage return
    inside one starts no row."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerow(headers)
    writer = csv.writer(out, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
    writer.writerows([_csv_cell(cell) for cell in row] for row in rows)
    return out.getvalue().rstrip("\n")


def _csv_cell(cell: Any) -> int | float | str:
    if isinstance(cell, int | float):
        return cell
    return "" if cell is None else neutralise(str(cell))


def render_table(headers: Sequence[str], rows: Sequence[Row]) -> str:
    """Columns padded to their widest cell; numbers right-aligned."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [max([width(h), *(width(row[i]) for row in cells)]) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows) for i in range(len(headers))
    ]
    lines = [_line(list(headers), widths, [False] * len(headers))]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend(_line(row, widths, numeric) for row in cells)
    return "\n".join(line.rstrip() for line in lines)


def width(text: str) -> int:
    """Columns the text takes in a terminal: wide (CJK) characters take two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def cut(text: str, limit: int = CELL_WIDTH) -> str:
    """The text on one line, at most ``limit`` columns wide."""
    text = " ".join(text.split())
    if width(text) <= limit:
        return text
    kept, used = [], 1
    for ch in text:
        used += width(ch)
        if used > limit:
            break
        kept.append(ch)
    return "".join(kept) + "…"


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.2f}"
    return cut(str(value))


def _line(cells: Sequence[str], widths: Sequence[int], numeric: Sequence[bool]) -> str:
    padded = []
    for text, size, right in zip(cells, widths, numeric, strict=True):
        pad = " " * (size - width(text))
        padded.append(pad + text if right else text + pad)
    return "  ".join(padded)


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
