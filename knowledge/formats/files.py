"""Loading files and folders into one knowledge base, and writing one out, in any of the formats."""

from __future__ import annotations

import codecs
import json
import os
import secrets
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

from knowledge.entry import KnowledgeBase
from knowledge.formats.csv_format import dumps_csv, read_csv
from knowledge.formats.errors import KnowledgeFileError, KnowledgeLoadError, Location, SourceMap
from knowledge.formats.jsonl_format import dumps_jsonl, read_jsonl
from knowledge.formats.reader import Reader
from knowledge.formats.yaml_format import dumps_yaml, read_yaml

Format = Literal["yaml", "csv", "jsonl"]
SUFFIXES: dict[str, Format] = {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".jsonl": "jsonl"}


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
    try:  # before opening ``out``: a failure must not leave an earlier export there cut to nothing
        data = text.encode(encoding)
    except UnicodeEncodeError as exc:
        raise KnowledgeFileError(str(out), None, None, f"{_holding_half_characters(kb)} holds half of a "
                                 f"character (U+{ord(text[exc.start]):04X}, half a surrogate pair), which "
                                 f"UTF-8 cannot hold; export as YAML, where it is written "
                                 f"\\u{ord(text[exc.start]):04X}, correct it and import the file") from exc
    _write_whole(Path(out), data)


def _write_whole(out: Path, data: bytes) -> None:
    """Write ``data`` to ``out`` whole or not at all.

    A write that fails part of the way (a full disk) must not leave an earlier export cut short, which
    could still load as a smaller knowledge base: the data goes to a hidden file beside it first, which
    then takes its place with the earlier file's permissions. A pipe or device is written as it is, and
    standard output (``/dev/stdout``) through the descriptor the shell opened: a file it names was
    replaced, or emptied where ``>>`` was to add to it."""
    descriptor = open_descriptor(out)
    if descriptor is not None:
        sys.stdout.flush()
        with open(descriptor, "wb", closefd=False) as stream:
            stream.write(data)
        return
    if out.exists() and not out.is_file():
        out.write_bytes(data)
        return
    target = out.resolve()
    temporary = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        if target.exists():
            shutil.copymode(target, temporary)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def open_descriptor(out: str | Path) -> int | None:
    """The descriptor of this process that ``out`` names (``/dev/stdout``, ``/dev/fd/N``,
    ``/proc/self/fd/N``), or None for a file of its own."""
    name = os.path.abspath(out)
    standard = {"/dev/stdin": 0, "/dev/stdout": 1, "/dev/stderr": 2}.get(name)
    if standard is not None:
        return standard
    for folder in ("/dev/fd/", "/proc/self/fd/"):
        number = name.removeprefix(folder)
        if number != name and number.isdigit():
            return int(number)
    return None


def _holding_half_characters(kb: KnowledgeBase) -> str:
    """What holds text no UTF-8 file can: the first such entry, or the other sections."""
    for entry in kb.entries:
        try:
            json.dumps(entry.to_dict(), ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return f"entry {entry.id!r}"
    return "a category, department or synonym group"


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


def _read_file(path: Path) -> Reader:
    """Parse one file; problems go into the returned reader."""
    fmt = SUFFIXES[path.suffix.lower()]
    try:
        raw = path.read_bytes()
    except OSError as exc:
        reader = Reader(str(path))
        reader.error(None, None, f"cannot read: {exc.strerror or exc}")
        return reader
    utf16 = _utf16(raw)
    if utf16 is not None:  # before UTF-8: English text in UTF-16 is valid UTF-8, a zero byte every other
        reader = Reader(str(path))
        reader.error(None, None, _not_utf8_but(utf16, fmt))
        return reader
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        reader = Reader(str(path))
        reader.error(raw.count(b"\n", 0, exc.start) + 1, None, _not_utf8(raw[exc.start], fmt))
        return reader
    return _parse(text, fmt, str(path))


def _not_utf8(byte: int, fmt: Format) -> str:
    hint = " (Excel: Save As, 'CSV UTF-8')" if fmt == "csv" else ""
    return (f"not valid UTF-8 (byte 0x{byte:02x}); the file is probably in another encoding such as "
            f"GBK/GB18030 or Windows-1252; re-save it as UTF-8{hint}")


def _utf16(raw: bytes) -> str | None:
    """Which UTF-16 ``raw`` is in (Notepad's and Excel's "Unicode text"), or None when it is in neither.

    Without a byte-order mark it shows in the zero byte beside each ASCII character (field names,
    punctuation, line breaks), all on one side; a UTF-8 text file has none."""
    if raw.startswith(codecs.BOM_UTF16_LE):
        return "UTF-16 LE"
    if raw.startswith(codecs.BOM_UTF16_BE):
        return "UTF-16 BE"
    even, odd = raw[0::2].count(0), raw[1::2].count(0)
    if max(even, odd) * 8 <= len(raw) or min(even, odd) * 8 > max(even, odd):
        return None
    return "UTF-16 LE" if odd > even else "UTF-16 BE"


def _not_utf8_but(encoding: str, fmt: Format) -> str:
    hint = "Excel: Save As, 'CSV UTF-8'" if fmt == "csv" else "Notepad: Save As, Encoding 'UTF-8'"
    return f"the file is in {encoding} (\"Unicode text\"), not UTF-8; save it as UTF-8 ({hint})"


def _parse(text: str, fmt: Format, path: str) -> Reader:
    reader = Reader(path)
    text = text.removeprefix("\ufeff")
    if fmt == "yaml":
        read_yaml(reader, text)
    elif fmt == "csv":
        read_csv(reader, text)
    else:
        read_jsonl(reader, text)
    return reader


def _merge(readers: Sequence[Reader], errors: list[KnowledgeFileError]) -> tuple[KnowledgeBase, SourceMap]:
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
