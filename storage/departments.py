"""Departments as escalation sees them: webhook endpoint, signing secrets, API token, categories."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Department, utcnow
from storage.outbox import OutboxRepository

CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,49}$")
PREFIX = re.compile(r"^[A-Z][A-Z0-9]{0,7}$")
TOKEN_PREFIX = "gbt_"  # noqa: S105 - the prefix every token has, not a token
MAX_SECRETS = 5
"""Secrets kept active at once; rotation beyond this drops the oldest."""


class DepartmentError(Exception):
    """A department change that cannot be made; the message says why."""


@dataclass(frozen=True)
class DepartmentProfile:
    """A department with everything routing, delivery and the API need."""

    code: str
    name: dict[str, str]
    enabled: bool
    webhook_url: str | None
    webhook_enabled: bool
    webhook_disabled_reason: str | None
    secrets: tuple[str, ...]
    has_token: bool
    categories: tuple[str, ...]
    ticket_prefix: str

    def display_name(self, lang: str) -> str:
        """The name in ``lang``, else in any language it has, else the code."""
        return self.name.get(lang) or next((v for v in self.name.values() if v), self.code)


def default_prefix(code: str) -> str:
    """The ticket prefix a department gets unless given one: the first two letters of its code."""
    letters = "".join(ch for ch in code.upper() if ch.isascii() and ch.isalnum())
    if not letters or not letters[0].isalpha():
        letters = "C" + letters
    return letters[:2]


def new_token() -> str:
    """A fresh API token (256 bits); only its hash is stored."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """SHA-256 of a token: enough for random tokens of this length, and looked up by index."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def check_code(code: str) -> str:
    if not CODE.match(code):
        raise DepartmentError(
            f"department code {code[:60]!r} must be 1-50 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit"
        )
    return code


def check_prefix(prefix: str) -> str:
    if not PREFIX.match(prefix):
        raise DepartmentError(f"ticket prefix {prefix[:20]!r} must be 1-8 capital letters or digits")
    return prefix


def check_name(name: Any) -> dict[str, str]:
    if (
        not isinstance(name, dict)
        or not name
        or not all(isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in name.items())
    ):
        raise DepartmentError("name must map language codes to non-empty texts, e.g. {en: Tax Bureau}")
    return {k: v.strip() for k, v in name.items()}


def check_categories(categories: Any) -> list[str]:
    if not isinstance(categories, list) or not all(isinstance(c, str) and c.strip() for c in categories):
        raise DepartmentError("categories must be a list of category codes")
    return list(dict.fromkeys(c.strip() for c in categories))


class DepartmentRepository:
    """Departments within one unit of work."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, code: str) -> DepartmentProfile | None:
        row = await self.session.get(Department, code)
        return profile(row) if row is not None else None

    async def all(self) -> list[DepartmentProfile]:
        rows = await self.session.scalars(select(Department).order_by(Department.code))
        return [profile(row) for row in rows]

    async def by_token(self, token: str) -> DepartmentProfile | None:
        """The department whose API token this is; None for an unknown token."""
        row = await self.session.scalar(select(Department).where(Department.token_hash == hash_token(token)))
        return profile(row) if row is not None else None

    async def owner_of_category(self, category: str) -> DepartmentProfile | None:
        """The enabled department that lists ``category`` as its own (the first by code if several do)."""
        for department in await self.all():
            if department.enabled and category in department.categories:
                return department
        return None

    async def add(
        self,
        code: str,
        name: dict[str, str],
        *,
        webhook_url: str | None = None,
        secrets: list[str] | None = None,
        categories: list[str] | None = None,
        ticket_prefix: str | None = None,
        enabled: bool = True,
        now: datetime | None = None,
    ) -> DepartmentProfile:
        """A new department; DepartmentError if the code is taken."""
        check_code(code)
        if await self.session.get(Department, code) is not None:
            raise DepartmentError(f"department {code} exists already; use `govbot departments update`")
        now = now or utcnow()
        row = Department(
            code=code,
            name=check_name(name),
            enabled=enabled,
            webhook_url=webhook_url,
            webhook_enabled=True,
            secrets=list(secrets or [])[:MAX_SECRETS],
            categories=check_categories(categories or []),
            ticket_prefix=check_prefix(ticket_prefix) if ticket_prefix else None,
            created_at=now,
            updated_at=now,
        )
        self.session.add(row)
        await self.session.flush()
        return profile(row)

    async def update(self, code: str, *, now: datetime | None = None, **changes: Any) -> DepartmentProfile:
        """Change some of name, webhook_url, categories, ticket_prefix, enabled, secrets."""
        row = await self._row(code)
        allowed = {"name", "webhook_url", "categories", "ticket_prefix", "enabled", "secrets"}
        unknown = changes.keys() - allowed
        if unknown:
            raise DepartmentError(f"cannot change {sorted(unknown)}")
        if "name" in changes:
            row.name = check_name(changes["name"])
        if "categories" in changes:
            row.categories = check_categories(changes["categories"])
        if "ticket_prefix" in changes:
            prefix = changes["ticket_prefix"]
            row.ticket_prefix = check_prefix(prefix) if prefix else None
        if "enabled" in changes:
            row.enabled = bool(changes["enabled"])
        if "secrets" in changes:
            row.secrets = list(changes["secrets"])[:MAX_SECRETS]
        now = now or utcnow()
        if "webhook_url" in changes:
            url = changes["webhook_url"] or None
            if row.webhook_enabled is False or url != row.webhook_url:
                # The tries before the 410, or at the address replaced, were the old endpoint's: the events go
                # to the new one now, and a failure there must not dead-letter them.
                await OutboxRepository(self.session).start_afresh(code, now)
            row.webhook_url = url
            # A new (or the same, re-saved) endpoint is a deliberate act: it lifts a 410 Gone.
            row.webhook_enabled, row.webhook_disabled_reason = True, None
        row.updated_at = now
        return profile(row)

    async def add_secret(self, code: str, secret: str, *, now: datetime | None = None) -> DepartmentProfile:
        """Sign with ``secret`` too (newest first); the oldest beyond MAX_SECRETS stop being used."""
        row = await self._row(code)
        row.secrets = [secret, *row.secrets][:MAX_SECRETS]
        row.updated_at = now or utcnow()
        return profile(row)

    async def retire_old_secrets(self, code: str, *, now: datetime | None = None) -> int:
        """Keep only the newest secret; returns how many were retired."""
        row = await self._row(code)
        retired = max(len(row.secrets) - 1, 0)
        row.secrets = list(row.secrets[:1])
        row.updated_at = now or utcnow()
        return retired

    async def set_token(self, code: str, token: str, *, now: datetime | None = None) -> None:
        """Replace the department's API token; the old one stops working at once."""
        row = await self._row(code)
        row.token_hash = hash_token(token)
        row.updated_at = now or utcnow()

    async def disable_webhook(
        self, code: str, reason: str, *, now: datetime | None = None, url: str | None = None
    ) -> bool:
        """Stop delivering to the endpoint (410 Gone); events wait until it is re-enabled. False if not.

        ``url``: the endpoint that answered; a 410 from an address staff have replaced since (a delivery in
        flight while they saved the new one) leaves the new endpoint alone.
        """
        row = await self.session.get(Department, code, with_for_update=True)
        if row is None or (url is not None and row.webhook_url != url):
            return False
        row.webhook_enabled, row.webhook_disabled_reason = False, reason[:500]
        row.updated_at = now or utcnow()
        return True

    async def _row(self, code: str) -> Department:
        row = await self.session.get(Department, code)
        if row is None:
            raise DepartmentError(f"no department {code[:60]!r}")
        return row


def profile(row: Department) -> DepartmentProfile:
    return DepartmentProfile(
        code=row.code,
        name=dict(row.name or {}),
        enabled=bool(row.enabled),
        webhook_url=row.webhook_url,
        webhook_enabled=bool(row.webhook_enabled) if row.webhook_enabled is not None else True,
        webhook_disabled_reason=row.webhook_disabled_reason,
        secrets=tuple(row.secrets or ()),
        has_token=row.token_hash is not None,
        categories=tuple(row.categories or ()),
        ticket_prefix=row.ticket_prefix or default_prefix(row.code),
    )
