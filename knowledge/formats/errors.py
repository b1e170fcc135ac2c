"""What loading a knowledge base reports: each problem with its file and line, and all of them at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


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
