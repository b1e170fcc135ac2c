"""Knowledge-base files into the database: `govbot kb import` and the first start's seed check them alike.

Loading refuses what the files alone show to be wrong; importing also refuses what only the database can
tell, then writes every change in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from knowledge.entry import KnowledgeBase
from knowledge.formats import KnowledgeFileError, KnowledgeLoadError, SourceMap, load_paths_with_sources
from knowledge.lint import unknown_departments
from storage.departments import DepartmentRepository
from storage.knowledge import ImportPlan, KnowledgeRepository


def load_for_import(paths: Sequence[str | Path]) -> tuple[KnowledgeBase, SourceMap]:
    """The files' knowledge base and where each entry is; :class:`KnowledgeLoadError` lists all problems."""
    kb, sources = load_paths_with_sources(paths)
    _refuse_entries_without_a_question(kb, sources)
    return kb, sources


async def import_knowledge(
    session: AsyncSession, kb: KnowledgeBase, sources: SourceMap, source: str, *, dry_run: bool = False
) -> ImportPlan:
    """Refuse entries of departments that exist nowhere, then write the changes (``dry_run``: only plan)."""
    await _refuse_unknown_departments(session, kb, sources)
    repo = KnowledgeRepository(session)
    return await (repo.plan_import(kb) if dry_run else repo.apply_import(kb, source))


async def department_codes(session: AsyncSession) -> set[str]:
    """The codes of the departments configured in the database."""
    return {department.code for department in await DepartmentRepository(session).all()}


def _refuse_entries_without_a_question(kb: KnowledgeBase, sources: SourceMap) -> None:
    """An entry is listed under its topic by its question: without one, citizens would see a blank button."""
    blank = [sources[entry.id] for entry in kb.entries if not entry.question]
    if blank:
        raise KnowledgeLoadError([
            KnowledgeFileError(where.path, where.line, "question", "missing: an entry needs its question in "
                                                                   "at least one language")
            for where in blank
        ])


async def _refuse_unknown_departments(session: AsyncSession, kb: KnowledgeBase, sources: SourceMap) -> None:
    """An entry whose department exists nowhere could never be escalated: refused, as lint refuses it."""
    unknown = unknown_departments(kb, await department_codes(session), sources)
    if unknown:
        raise KnowledgeLoadError([
            KnowledgeFileError(finding.path or "<files>", finding.line, finding.field,
                               f"{finding.message}: in neither the files nor the database")
            for finding in unknown
        ])
