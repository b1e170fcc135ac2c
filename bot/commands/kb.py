"""`govbot kb …`: import, export, lint, ask and evaluate the knowledge base."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Literal, cast

from sqlalchemy.exc import SQLAlchemyError

from bot.commands import suggestions
from bot.config import Settings
from bot.knowledge_import import department_codes, import_knowledge, load_for_import
from knowledge.entry import KnowledgeBase, local_date
from knowledge.evaluate import CaseFileError, evaluate, load_cases, render_table
from knowledge.formats import KnowledgeFileError, dump, load_paths, load_paths_with_sources, open_descriptor
from knowledge.lint import lint
from knowledge.matcher import Match, Matcher
from storage import db
from storage.knowledge import ImportPlan, KnowledgeRepository

Format = Literal["yaml", "csv", "jsonl"]


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("kb", help="the knowledge base", parents=[common])
    sub = parser.add_subparsers(dest="kb_command", required=True, metavar="ACTION")

    p = sub.add_parser(
        "import", help="validate files and write them to the database, all or nothing", parents=[common]
    )
    p.add_argument("paths", nargs="+", type=path_argument, metavar="PATH",
                   help="YAML, CSV or JSON Lines files, or folders")
    p.add_argument("--dry-run", action="store_true", help="show what would change and write nothing")
    p.set_defaults(handler=import_command)

    p = sub.add_parser("export", help="write the database's knowledge base to a file", parents=[common])
    p.add_argument("out", type=path_argument, metavar="OUT")
    p.add_argument(
        "--format", choices=["yaml", "csv", "jsonl"], default=None, help="default: from OUT's extension"
    )
    p.set_defaults(handler=export_command)

    p = sub.add_parser(
        "delete", help="take entries out of the knowledge base (their history stays)", parents=[common]
    )
    p.add_argument("entry_ids", nargs="+", metavar="ENTRY_ID")
    p.set_defaults(handler=delete_command)

    p = sub.add_parser("lint", help="check knowledge-base files", parents=[common])
    p.add_argument("paths", nargs="+", type=path_argument, metavar="PATH")
    p.set_defaults(handler=lint_command, writes=False)

    p = sub.add_parser("ask", help="show how the matcher decides on a question", parents=[common])
    p.add_argument("question")
    p.add_argument("--lang", default=None, help="the asker's language, e.g. en or zh")
    p.add_argument("--kb", nargs="+", type=path_argument, metavar="PATH",
                   help="files to load instead of the database")
    p.add_argument("--json", action="store_true", help="print the match as JSON")
    p.set_defaults(handler=ask_command, writes=False)

    p = sub.add_parser("eval", help="measure the matcher on labelled questions", parents=[common])
    p.add_argument("--kb", nargs="+", type=path_argument, metavar="PATH", required=True)
    p.add_argument("--cases", type=path_argument, metavar="FILE.jsonl", required=True)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=eval_command, writes=False)

    suggestions.register(sub, common)


def path_argument(text: str) -> str:
    """A path as given; an empty one (an unset shell variable, say) would mean the working directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path was given")
    return text


def import_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Validate every file first, then write all changes in one transaction (or none with --dry-run)."""
    kb, sources = load_for_import(args.paths)
    source = "import:" + ",".join(args.paths)

    async def go() -> ImportPlan:
        # Importing the first knowledge base sets a deployment up: it may make the SQLite file.
        async with (db.connected(settings().database_url, create=not args.dry_run) as engine,
                    db.sessionmaker(engine)() as session, session.begin()):
            return await import_knowledge(session, kb, sources, source, dry_run=args.dry_run)

    plan = asyncio.run(go())
    print(format_plan(plan, dry_run=args.dry_run))
    return 0


def format_plan(plan: ImportPlan, *, dry_run: bool) -> str:
    """One line per change and a summary line."""
    lines = []
    for change in plan.entries:
        if change.kind == "created":
            lines.append(f"+ {change.entry_id}")
        elif change.kind == "updated":
            lines.append(f"~ {change.entry_id} ({', '.join(change.fields)})")
    lines.extend(f"~ {item}" for item in plan.meta)
    summary = (
        f"{plan.count('created')} created, {plan.count('updated')} updated, "
        f"{plan.count('unchanged')} unchanged"
    )
    if not plan.has_changes:
        summary = f"no changes ({plan.count('unchanged')} entries unchanged)"
    lines.append(("dry run, nothing written: " if dry_run else "") + summary)
    return "\n".join(lines)


def export_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Write the current knowledge base in one of the file formats."""
    fmt = args.format or _format_from_suffix(Path(args.out))
    if fmt is None:
        print("govbot: cannot tell the format from the file name; give --format yaml|csv|jsonl",
              file=sys.stderr)
        return 2
    named = _named_format(Path(args.out))
    if named not in (None, fmt):
        # `kb import` goes by the extension, so such a file would not import again.
        print(f"govbot: --format {fmt} contradicts the name {args.out} ({named}); name it .{fmt} "
              f"or leave out --format", file=sys.stderr)
        return 2

    kb = asyncio.run(_kb_from_database(settings()))
    try:
        dump(kb, args.out, cast(Format, fmt))
    except KnowledgeFileError as exc:
        print(f"govbot: cannot export as {fmt}: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"govbot: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    # Not into the export itself when that is standard output: a JSONL file would not import again.
    summary = sys.stderr if open_descriptor(args.out) is not None else sys.stdout
    print(f"wrote {len(kb.entries)} entries to {args.out} ({fmt})", file=summary)
    return 0


def delete_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Delete entries, all or none: an id that is not there refuses the whole command."""
    entry_ids = list(dict.fromkeys(args.entry_ids))  # each once, in the order given

    async def go() -> list[str]:
        async with (db.connected(settings().database_url) as engine,
                    db.sessionmaker(engine)() as session, session.begin()):
            repo = KnowledgeRepository(session)
            missing = [entry_id for entry_id in entry_ids if await repo.entry(entry_id) is None]
            if missing:
                return missing
            for entry_id in entry_ids:
                await repo.delete_entry(entry_id, "delete:cli")
            return []

    missing = asyncio.run(go())
    if missing:
        print(f"govbot: no entry {', '.join(missing)} in the knowledge base; nothing was deleted",
              file=sys.stderr)
        return 1
    for entry_id in entry_ids:
        print(f"- {entry_id}")
    print(f"deleted {len(entry_ids)} entries; running bots stop answering them within "
          "GOVBOT_KB_REFRESH_SECONDS")
    return 0


def lint_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print every finding; exit 1 when any is an error.

    Departments and categories already in the database count as known, as for `kb import`, so that one
    file of a larger knowledge base can be checked alone; without a database the files alone count."""
    kb, sources = load_paths_with_sources(args.paths)
    config = settings()
    try:
        departments, categories = asyncio.run(_configured_codes(config.database_url))
        alone = None
    except (db.DatabaseUnavailable, SQLAlchemyError, OSError) as exc:
        departments, categories = set(), set()
        alone = str(exc) if isinstance(exc, db.DatabaseUnavailable) else db.error_reason(exc)
    findings = lint(kb, known_departments=departments, known_categories=categories, sources=sources,
                    today=_today(config))
    for finding in findings:
        print(finding)
    errors = sum(1 for f in findings if f.severity == "error")
    print(f"{len(kb.entries)} entries: {errors} error(s), {len(findings) - errors} warning(s)")
    if alone is not None and any(f.field in ("department", "category") for f in findings):
        print(f"(departments checked against the files alone: {alone})")
    return 1 if errors else 0


async def _configured_codes(url: str) -> tuple[set[str], set[str]]:
    """The department and category codes the database already has (read only: no schema upgrade)."""
    async with db.reachable(url) as engine, db.sessionmaker(engine)() as session:
        return await department_codes(session), await KnowledgeRepository(session).category_codes()


def _today(config: Settings) -> date:
    """The service desk's date: entries come into force and expire by its calendar, as in the dialogue."""
    return local_date(datetime.now(UTC), config.zone())


def ask_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print the decision for one question, with the top candidates and their scores."""
    config = settings()
    kb = load_paths(args.kb) if args.kb else asyncio.run(_kb_from_database(config))
    if not kb.entries:
        where = " ".join(args.kb) if args.kb else "the database"
        print(
            f"govbot: the knowledge base in {where} has no entries; "
            "load one with `govbot kb import PATH` or pass --kb PATH",
            file=sys.stderr,
        )
        return 1
    matcher = Matcher(kb, config.matcher_config())
    match = matcher.match(args.question, args.lang, today=_today(config))
    if args.json:
        print(json.dumps(match.to_dict(), ensure_ascii=False, indent=2))
    else:
        print(format_match(match, matcher))
    return 0


def format_match(match: Match, matcher: Matcher) -> str:
    """The decision, its reason and signals, then one line per candidate."""
    signals = ", ".join(f"{key}={value:.3g}" for key, value in match.signals.items())
    lines = [f"decision: {match.decision.value} ({match.reason})", f"signals: {signals}", "candidates:"]
    for rank, candidate in enumerate(match.candidates[:5], start=1):
        entry = matcher.entry(candidate.entry_id)
        question = next(iter(entry.question.values()), "") if entry else ""
        lines.append(f"  {rank}. {candidate.score:6.3f}  {candidate.entry_id}  {question}")
    return "\n".join(lines)


def eval_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Run every case against the given files and print the quality and latency figures."""
    kb = load_paths(args.kb)
    if not kb.entries:  # figures of nothing would read as an evaluation that ran
        print(f"govbot: the knowledge base in {' '.join(args.kb)} has no entries; nothing to evaluate",
              file=sys.stderr)
        return 1
    try:
        cases = load_cases(args.cases)
    except CaseFileError as exc:
        print(f"govbot: {exc}", file=sys.stderr)
        return 1
    known = {entry.id for entry in kb.entries}
    strangers = [case for case in cases if case.relevant and not known.issuperset(case.relevant)]
    if strangers:  # cases labelled against another knowledge base: counted as misses, said so
        missing = sorted({entry_id for case in strangers for entry_id in case.relevant} - known)
        shown = ", ".join(missing[:10]) + (", …" if len(missing) > 10 else "")
        print(f"govbot: warning: {len(strangers)} case(s) in {args.cases} name entries not in the "
              f"knowledge base: {shown}", file=sys.stderr)
    config = settings()
    # On the service desk's date, as the dialogue and `kb ask` judge which entries are in force.
    report = evaluate(Matcher(kb, config.matcher_config()), cases, today=_today(config))
    print(json.dumps(report.to_dict(), ensure_ascii=False, indent=2) if args.json else render_table(report))
    return 0


async def _kb_from_database(settings: Settings) -> KnowledgeBase:
    async with db.connected(settings.database_url) as engine, db.sessionmaker(engine)() as session:
        kb, _ = await KnowledgeRepository(session).load()
        return kb


def _format_from_suffix(path: Path) -> str | None:
    return {".yaml": "yaml", ".yml": "yaml", ".csv": "csv", ".jsonl": "jsonl"}.get(path.suffix.lower())


def _named_format(out: Path) -> str | None:
    """The format OUT's extension names (json for .json); None for no known one, or for stdout or a device."""
    if out.exists() and not out.is_file():
        return None
    return _format_from_suffix(out) or ("json" if out.suffix.lower() == ".json" else None)
