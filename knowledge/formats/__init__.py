"""Reading and writing knowledge-base files: YAML, CSV (for spreadsheets) and JSON Lines.

Several files, or folders read recursively (*.yaml, *.yml, *.csv, *.jsonl in path order), merge into one
:class:`KnowledgeBase`; files and folders whose name starts with "." are skipped. Loading checks everything
and reports every problem at once. Each format is described in its module: ``yaml_format`` (the main
one), ``csv_format`` and ``jsonl_format``; ``reader`` checks what they parse, ``files`` loads and writes.
"""

from knowledge.formats.csv_format import LOCALIZED_COLUMNS, PLAIN_COLUMNS, dumps_csv, phrase_fits_csv
from knowledge.formats.errors import KnowledgeFileError, KnowledgeLoadError, Location, SourceMap
from knowledge.formats.files import (
    SUFFIXES,
    Format,
    dump,
    dumps,
    load_file,
    load_paths,
    load_paths_with_sources,
    loads,
    open_descriptor,
)
from knowledge.formats.jsonl_format import dumps_jsonl
from knowledge.formats.reader import ENTRY_FIELDS, ID_PATTERN, LANGUAGE_PATTERN, MAX_ID_LENGTH, clean_text
from knowledge.formats.yaml_format import dumps_yaml

__all__ = [
    "ENTRY_FIELDS",
    "ID_PATTERN",
    "LANGUAGE_PATTERN",
    "LOCALIZED_COLUMNS",
    "MAX_ID_LENGTH",
    "PLAIN_COLUMNS",
    "SUFFIXES",
    "Format",
    "KnowledgeFileError",
    "KnowledgeLoadError",
    "Location",
    "SourceMap",
    "clean_text",
    "dump",
    "dumps",
    "dumps_csv",
    "dumps_jsonl",
    "dumps_yaml",
    "load_file",
    "load_paths",
    "load_paths_with_sources",
    "loads",
    "open_descriptor",
    "phrase_fits_csv",
]
