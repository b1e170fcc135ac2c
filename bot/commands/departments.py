"""`govbot departments …`: the departments that receive cases, their endpoints, secrets and API tokens.

A new API token or signing secret is printed once and never again: only the token's hash is stored.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.webhooks import EndpointRefused, InvalidSecret, UrlPolicy, new_secret, secret_key
from storage import db
from storage.departments import (
    DepartmentError,
    DepartmentProfile,
    DepartmentRepository,
    check_categories,
    check_code,
    check_name,
    check_prefix,
    new_token,
)

T = TypeVar("T")
IMPORT_FIELDS = {"code", "name", "webhook_url", "secrets", "categories", "ticket_prefix", "enabled"}


def register(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    parser = commands.add_parser("departments", help="departments that receive cases", parents=[common])
    sub = parser.add_subparsers(dest="departments_command", required=True, metavar="ACTION")

    p = sub.add_parser("list", help="list departments", parents=[common])
    p.add_argument("--json", action="store_true", help="print JSON (secrets and tokens are never shown)")
    p.set_defaults(handler=list_command)

    p = sub.add_parser(
        "add", help="add a department; prints its API token and signing secret once", parents=[common]
    )
    p.add_argument("code")
    _department_options(p)
    p.set_defaults(handler=add_command)

    p = sub.add_parser("update", help="change a department", parents=[common])
    p.add_argument("code")
    _department_options(p)
    p.add_argument("--no-webhook", action="store_true", help="remove the endpoint (events wait)")
    p.add_argument("--enable", action="store_true", help="take part in routing and the API again")
    p.set_defaults(handler=update_command)

    p = sub.add_parser("rotate-secret", help="add a new signing secret (printed once)", parents=[common])
    p.add_argument("code")
    p.add_argument(
        "--retire-old",
        action="store_true",
        help="instead: stop signing with every secret but the newest (after the department switched)",
    )
    p.set_defaults(handler=rotate_secret_command)

    p = sub.add_parser("rotate-token", help="replace the API token (printed once)", parents=[common])
    p.add_argument("code")
    p.set_defaults(handler=rotate_token_command)

    p = sub.add_parser(
        "import", help="add or update departments from a YAML file, all or nothing", parents=[common]
    )
    p.add_argument("file", metavar="FILE.yaml", type=Path)
    p.set_defaults(handler=import_command)


def _department_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--name", action="append", default=[], metavar="LANG=TEXT", help="display name, e.g. en='Tax Bureau'"
    )
    p.add_argument("--webhook-url", metavar="URL", help="the https endpoint that receives events")
    p.add_argument("--category", action="append", metavar="CODE", help="a category it owns (repeatable)")
    p.add_argument("--ticket-prefix", metavar="PREFIX", help="e.g. TR for TR-2026-000123")
    p.add_argument("--disable", action="store_true", help="take it out of routing and the API")


def list_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Print every department."""
    departments = _run(settings, lambda session: DepartmentRepository(session).all(), write=False)
    if args.json:
        print(json.dumps([_public(d) for d in departments], ensure_ascii=False, indent=2))
        return 0
    if not departments:
        print("no departments")
        return 0
    rows = [("CODE", "NAME", "ENABLED", "PREFIX", "CATEGORIES", "SECRETS", "TOKEN", "WEBHOOK")]
    rows += [
        (
            d.code,
            d.display_name("en"),
            "yes" if d.enabled else "no",
            d.ticket_prefix,
            ",".join(d.categories) or "-",
            str(len(d.secrets)),
            "set" if d.has_token else "-",
            _webhook_state(d),
        )
        for d in departments
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1])
    return 0


def add_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Add a department with a fresh API token and signing secret, both printed once."""
    config = settings()
    try:
        check_code(args.code)
        name = check_name(_names(args.name) or {"en": args.code})
        warnings = _check_url(config, args.webhook_url) if args.webhook_url else []
    except (DepartmentError, EndpointRefused) as exc:
        return _fail(exc)
    token, secret = new_token(), new_secret()

    async def add(session: AsyncSession) -> None:
        repo = DepartmentRepository(session)
        await repo.add(
            args.code,
            name,
            webhook_url=args.webhook_url,
            secrets=[secret],
            categories=args.category or [],
            ticket_prefix=args.ticket_prefix,
            enabled=not args.disable,
        )
        await repo.set_token(args.code, token)

    try:
        _run(settings, add)
    except DepartmentError as exc:
        return _fail(exc)
    _warn(warnings)
    print(f"department {args.code} added")
    _print_once("API token", token)
    _print_once("signing secret", secret)
    return 0


def update_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Change what was given; a new webhook URL also re-enables an endpoint that answered 410 Gone.

    A department left with an endpoint and no signing secret gets one, printed once.
    """
    given = (args.name, args.webhook_url, args.no_webhook, args.category is not None,
             args.ticket_prefix is not None, args.enable, args.disable)
    if not any(given):
        print(
            "govbot: nothing to change; give --name, --webhook-url or --no-webhook, --category, "
            "--ticket-prefix, --enable or --disable",
            file=sys.stderr,
        )
        return 2
    config = settings()
    changes: dict[str, Any] = {}
    try:
        if args.name:
            changes["name"] = check_name(_names(args.name))
        warnings = _check_url(config, args.webhook_url) if args.webhook_url else []
    except (DepartmentError, EndpointRefused) as exc:
        return _fail(exc)
    if args.webhook_url or args.no_webhook:
        changes["webhook_url"] = None if args.no_webhook else args.webhook_url
    if args.category is not None:
        changes["categories"] = args.category
    if args.ticket_prefix is not None:
        changes["ticket_prefix"] = args.ticket_prefix
    if args.enable or args.disable:
        changes["enabled"] = bool(args.enable)
    secret = new_secret()

    async def update(session: AsyncSession) -> bool:
        repo = DepartmentRepository(session)
        department = await repo.update(args.code, **changes)
        if department.webhook_url and not department.secrets:
            # An endpoint with nothing to sign for it would fail every delivery.
            await repo.add_secret(args.code, secret)
            return True
        return False

    try:
        secret_added = _run(settings, update)
    except DepartmentError as exc:
        return _fail(exc)
    _warn(warnings)
    print(f"department {args.code} updated: {', '.join(sorted(changes))}")
    if secret_added:
        _print_once("signing secret", secret)
    return 0


def rotate_secret_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Sign with a new secret as well as the old ones, or retire all but the newest."""
    if args.retire_old:
        try:
            retired = _run(
                settings, lambda session: DepartmentRepository(session).retire_old_secrets(args.code)
            )
        except DepartmentError as exc:
            return _fail(exc)
        print(
            f"department {args.code}: {retired} old secret(s) retired; deliveries are signed with the newest"
        )
        return 0
    secret = new_secret()
    try:
        _run(settings, lambda session: DepartmentRepository(session).add_secret(args.code, secret))
    except DepartmentError as exc:
        return _fail(exc)
    print(f"department {args.code}: new signing secret added; deliveries are signed with it and the old ones")
    _print_once("signing secret", secret)
    print(
        "once the department verifies with the new secret, run: "
        f"govbot departments rotate-secret {args.code} --retire-old"
    )
    return 0


def rotate_token_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Replace the API token; the old one stops working at once."""
    token = new_token()
    try:
        _run(settings, lambda session: DepartmentRepository(session).set_token(args.code, token))
    except DepartmentError as exc:
        return _fail(exc)
    print(f"department {args.code}: new API token; the old one no longer works")
    _print_once("API token", token)
    return 0


def import_command(args: argparse.Namespace, settings: Callable[[], Settings]) -> int:
    """Validate the whole file, then add or update every department in one transaction.

    Every department the file names ends with an API token and a signing secret; new ones are printed once.
    """
    config = settings()
    try:
        specs, warnings = _load_import(args.file, config)
    except (DepartmentError, EndpointRefused, InvalidSecret) as exc:
        return _fail(exc)
    issued: list[tuple[str, str, str]] = []

    async def apply(session: AsyncSession) -> list[str]:
        repo = DepartmentRepository(session)
        done = []
        for spec in specs:
            done.append(await _apply_spec(repo, spec, issued))
        return done

    try:
        done = _run(settings, apply)
    except DepartmentError as exc:
        return _fail(exc)
    _warn(warnings)
    for line in done:
        print(line)
    for code, what, value in issued:
        _print_once(f"{code} {what}", value)
    return 0


async def _apply_spec(
    repo: DepartmentRepository, spec: dict[str, Any], issued: list[tuple[str, str, str]]
) -> str:
    code = spec["code"]
    existing = await repo.get(code)
    if existing is None:
        secrets = spec.get("secrets")
        if secrets is None:
            secrets = [new_secret()]
            issued.append((code, "signing secret", secrets[0]))
        await repo.add(
            code,
            spec["name"],
            webhook_url=spec.get("webhook_url"),
            secrets=secrets,
            categories=spec.get("categories", []),
            ticket_prefix=spec.get("ticket_prefix"),
            enabled=spec.get("enabled", True),
        )
        token = new_token()
        await repo.set_token(code, token)
        issued.append((code, "API token", token))
        return f"added {code}"
    changes = {k: v for k, v in spec.items() if k != "code"}
    if not existing.secrets and "secrets" not in changes:
        # One the knowledge base created has none; without one every delivery to it fails.
        changes["secrets"] = [new_secret()]
        issued.append((code, "signing secret", changes["secrets"][0]))
    if not existing.has_token:
        token = new_token()
        await repo.set_token(code, token)
        issued.append((code, "API token", token))
    await repo.update(code, **changes)
    return f"updated {code}: {', '.join(sorted(changes)) or 'nothing'}"


class _TextLoader(yaml.SafeLoader):
    """Safe YAML that reads numbers as the text typed: nothing in the file is a number, and YAML 1.1 turns
    ``code: 0110`` into the octal 72 and ``code: 1_2`` into 12."""


_TextLoader.yaml_implicit_resolvers = {
    first: [rule for rule in rules if rule[0] not in ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")]
    for first, rules in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _load_import(path: Path, config: Settings) -> tuple[list[dict[str, Any]], list[str]]:
    """Every department of the file, validated; DepartmentError names each problem."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TextLoader)  # noqa: S506 - a SafeLoader
    except RecursionError:
        raise DepartmentError(f"cannot read {path}: nested deeper than a departments file can be") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DepartmentError(f"cannot read {path}: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict) or not isinstance(data.get("departments"), list):
        raise DepartmentError(f"{path}: expected a mapping with a 'departments' list")
    problems: list[str] = []
    specs: list[dict[str, Any]] = []
    warnings: list[str] = []
    seen: set[str] = set()
    for index, item in enumerate(data["departments"], start=1):
        try:
            spec, more = _spec(item, config)
        except (DepartmentError, EndpointRefused, InvalidSecret) as exc:
            problems.append(f"department #{index}: {exc}")
            continue
        if spec["code"] in seen:
            problems.append(f"department #{index}: code {spec['code']} appears twice")
        seen.add(spec["code"])
        specs.append(spec)
        warnings += more
    if problems:
        raise DepartmentError(f"{path}: nothing was changed:\n  " + "\n  ".join(problems))
    return specs, warnings


def _spec(item: Any, config: Settings) -> tuple[dict[str, Any], list[str]]:
    if not isinstance(item, dict):
        raise DepartmentError("each department is a mapping with code, name, …")
    unknown = item.keys() - IMPORT_FIELDS
    if unknown:
        raise DepartmentError(f"unknown field(s) {sorted(str(k) for k in unknown)}")
    if not isinstance(item.get("code"), str):
        raise DepartmentError("code is required")
    spec: dict[str, Any] = {"code": check_code(item["code"]), "name": check_name(item.get("name"))}
    warnings: list[str] = []
    if "webhook_url" in item:
        url = item["webhook_url"]
        if url is not None:
            warnings = _check_url(config, url)
        spec["webhook_url"] = url
    if "secrets" in item:
        secrets = item["secrets"]
        if not isinstance(secrets, list) or not secrets:
            raise DepartmentError("secrets must be a non-empty list of whsec_… secrets")
        for secret in secrets:
            secret_key(secret)
        spec["secrets"] = list(secrets)
    if "categories" in item:
        spec["categories"] = check_categories(item["categories"])
    if item.get("ticket_prefix") is not None:
        spec["ticket_prefix"] = check_prefix(str(item["ticket_prefix"]))
    if "enabled" in item:
        if not isinstance(item["enabled"], bool):
            raise DepartmentError("enabled must be true or false")
        spec["enabled"] = item["enabled"]
    return spec, warnings


def _check_url(config: Settings, url: Any) -> list[str]:
    policy = UrlPolicy.create(config.webhook_allow_http, config.webhook_allowed_networks)
    if not isinstance(url, str):
        raise EndpointRefused("webhook_url must be a URL")
    return asyncio.run(policy.check_endpoint(url))


def _run(
    settings: Callable[[], Settings], work: Callable[[AsyncSession], Awaitable[T]], *, write: bool = True
) -> T:
    async def go() -> T:
        async with db.connected(settings().database_url, create=write) as engine:
            sessions = db.sessionmaker(engine)
            if not write:
                async with sessions() as session:
                    return await work(session)
            async with sessions.begin() as session:
                return await work(session)

    return asyncio.run(go())


def _names(pairs: list[str]) -> dict[str, str]:
    names = {}
    for pair in pairs:
        lang, sep, text = pair.partition("=")
        if not sep or not lang.strip():
            raise DepartmentError(f"--name takes LANG=TEXT, e.g. en='Tax Bureau'; got {pair!r}")
        names[lang.strip()] = text
    return names


def _webhook_state(department: DepartmentProfile) -> str:
    if not department.webhook_url:
        return "- (no endpoint: events wait)"
    if not department.webhook_enabled:
        return f"{department.webhook_url} (DISABLED: {department.webhook_disabled_reason})"
    return department.webhook_url


def _public(department: DepartmentProfile) -> dict[str, Any]:
    return {
        "code": department.code,
        "name": department.name,
        "enabled": department.enabled,
        "ticket_prefix": department.ticket_prefix,
        "categories": list(department.categories),
        "webhook_url": department.webhook_url,
        "webhook_enabled": department.webhook_enabled,
        "webhook_disabled_reason": department.webhook_disabled_reason,
        "secrets": len(department.secrets),
        "token": department.has_token,
    }


def _print_once(what: str, value: str) -> None:
    print(f"{what} (shown once, store it now): {value}")


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)


def _fail(exc: Exception) -> int:
    print(f"govbot: {exc}", file=sys.stderr)
    return 1
