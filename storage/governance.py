"""Governance at the moment of disclosure: a case as one department may see it now, audited, consent asked.

Payloads are decided when they leave, not when the event happened: the department's clearance, the
citizen's consent and an erasure at that moment decide what goes (storage/disclosure.py). Consent for the
department a citizen escalated to is implied for the text they wrote, and for their contact details when
the escalation asked them; a withdrawal in /privacy overrides both. Anything withheld only for want of
consent is asked of the citizen (a notice with Share / Don't share buttons), once per department at a time.
A batch (a dispatcher's claim, a list of cases) is governed with a fixed number of queries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage import case_events
from storage.audit import AuditKind, AuditLog, NewRecord, citizen_ref
from storage.cases import (
    Case,
    CaseChangeRecord,
    CaseRecord,
    CaseRepository,
    CaseStatus,
    case_of,
    notify_citizen,
)
from storage.citizen_data import TOMBSTONE
from storage.classification import (
    DEFAULT_CLEARANCE,
    LOWEST_CLEARANCE,
    DataClass,
    Field,
    class_of,
    needs_consent,
    parse_class,
)
from storage.consent import ConsentRecord, ConsentRepository, Decision, Source
from storage.disclosure import Governed, Withheld, govern_case, govern_event
from storage.models import Department, User
from storage.outbox import Delivery, OutboxRepository, new_webhook_id

CONSENT_NOTICE = "consent"
"""The citizen notice kind of a consent prompt (rendered by handlers/privacy.py)."""


class ClearanceError(Exception):
    """A clearance that cannot be set; the message says why."""


@dataclass(frozen=True)
class Grant:
    """Whether a field may go to a department, and on what basis."""

    granted: bool
    source: str


@dataclass(frozen=True)
class Request:
    """One document to govern: a webhook payload (``channel="webhook"``) or an API body (``"api"``)."""

    case_id: int
    department: str
    document: dict[str, Any]
    channel: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Known:
    """What governing a batch needs from the database, read with one query per table."""

    cases: dict[int, Case]
    originals: dict[int, str]
    clearances: dict[str, DataClass]
    erased: dict[int, bool]
    decisions: dict[tuple[int, str], dict[str, Decision]]


async def clearance_of(session: AsyncSession, department: str) -> DataClass:
    """The department's clearance now; an unknown department gets the lowest."""
    return (await _clearances(session, {department})).get(department, LOWEST_CLEARANCE)


async def clearances(session: AsyncSession) -> dict[str, DataClass]:
    rows = await session.execute(select(Department.code, Department.clearance).order_by(Department.code))
    return {code: parse_class(value, DEFAULT_CLEARANCE) for code, value in rows.all()}


async def set_clearance(
    session: AsyncSession, department: str, clearance: str, *, now: datetime, by: str = "staff"
) -> tuple[DataClass, DataClass]:
    """Change a department's clearance (audited) to (old, new); pending deliveries follow the new one."""
    new = parse_class(clearance, default=DataClass.PUBLIC)
    if clearance.strip().lower() != new.label or new < LOWEST_CLEARANCE:
        allowed = ", ".join(c.label for c in DataClass if c >= LOWEST_CLEARANCE)
        raise ClearanceError(f"clearance must be one of {allowed}; got {clearance[:20]!r}")
    row = await session.get(Department, department, with_for_update=True)
    if row is None:
        raise ClearanceError(f"no department {department[:60]!r}")
    old = parse_class(row.clearance, DEFAULT_CLEARANCE)
    row.clearance, row.updated_at = new.label, now
    await AuditLog(session).append(
        AuditKind.CLEARANCE,
        now=now,
        department=department,
        basis={"from": old.label, "to": new.label},
        details={"by": by},
    )
    return old, new


def field_grants(
    case: Case, department: str, original: str, decisions: dict[str, Decision]
) -> dict[str, Grant]:
    """Consent for each field of this case towards ``department``: implied, then explicit if later."""
    implied: dict[str, datetime] = {}
    if department == original:
        implied[Field.FREE_TEXT] = case.created_at
        if case.contact and case.contact_consent_at is not None:
            implied[Field.CONTACT] = case.contact_consent_at
    result = {name: Grant(True, Source.ESCALATION.value) for name in implied}
    for name, decision in decisions.items():
        if name not in implied or decision.decided_at >= implied[name]:
            result[name] = Grant(decision.granted, decision.source)
    return result


async def granted_by_cases(session: AsyncSession, citizen_id: int) -> dict[str, set[str]]:
    """Department → fields it may receive now, for every department the citizen's cases were sent to.

    However many cases there are: a field is settled by the newest case implying it (its text, and contact
    details given with it), which an explicit decision overrides only if made after.
    """
    original = _original_department_column()
    found: dict[str, set[str]] = {}
    departments = await session.scalars(select(original).where(CaseRecord.user_id == citizen_id).distinct())
    for department in list(departments):
        decisions = await ConsentRepository(session).decisions(citizen_id, department)
        fields = found.setdefault(department, set())
        of_department = (CaseRecord.user_id == citizen_id, original == department)
        with_contact = (*of_department, CaseRecord.contact.is_not(None), CaseRecord.contact != "",
                        CaseRecord.contact_consent_at.is_not(None))
        for conditions, newest in ((of_department, CaseRecord.created_at),
                                   (with_contact, CaseRecord.contact_consent_at)):
            row = await session.scalar(
                select(CaseRecord).where(*conditions).order_by(newest.desc(), CaseRecord.id.desc()).limit(1)
            )
            if row is not None:
                granted = field_grants(case_of(row), department, department, decisions).items()
                fields.update(name for name, grant in granted if grant.granted)
    return found


async def governed_deliveries(
    session: AsyncSession, deliveries: Sequence[Delivery], now: datetime
) -> list[Delivery]:
    """Claimed deliveries with their payloads cut to what each department may receive at this moment."""
    requests = [
        Request(
            d.case_id,
            d.department,
            d.payload,
            "webhook",
            {"event": d.type, "webhook_id": d.webhook_id, "attempt": d.attempt},
        )
        for d in deliveries
    ]
    payloads = await govern_all(session, requests, now=now)
    return [dataclasses.replace(d, payload=p) for d, p in zip(deliveries, payloads, strict=True)]


async def governed_case_list(
    session: AsyncSession, cases: Sequence[Case], department: str, *, now: datetime
) -> list[dict[str, Any]]:
    """Cases as a department's list shows them, each with its ``privacy`` block."""
    requests = [
        Request(c.id, department, {"case": c.for_department()}, "api", {"request": "list"}) for c in cases
    ]
    documents = await govern_all(session, requests, now=now)
    return [dict(d["case"]) | {"privacy": d["privacy"]} for d in documents]


async def govern_for_department(
    session: AsyncSession,
    case_id: int,
    department: str,
    document: dict[str, Any],
    *,
    now: datetime,
    channel: str,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A webhook payload (``channel="webhook"``) or API body (``"api"``) as the department may have it now."""
    request = Request(case_id, department, document, channel, details or {})
    [governed] = await govern_all(session, [request], now=now)
    return governed


async def govern_all(
    session: AsyncSession, requests: Sequence[Request], *, now: datetime
) -> list[dict[str, Any]]:
    """Govern documents in order; disclosures of personal data go to the audit log, consent is asked."""
    if not requests:
        return []
    known = await _load(session, requests)
    documents, records, asks = [], [], []
    for request in requests:
        governed, record = _govern(known, request)
        documents.append(governed.document)
        if record is not None:
            records.append(record)
        case = known.cases.get(request.case_id)
        if case is not None and not known.erased.get(request.case_id, True):
            asks.append((case, request.department, governed))
    for case, department, governed in asks:
        await ask_consent(session, case, department, governed, now)
    # The audit log's head last: a prompt needs the citizen's row, which their turn holds while it may
    # append to the log itself (a consent decision, an erasure); holding the head first, each waited for
    # the other and PostgreSQL broke the deadlock by failing one of them.
    await AuditLog(session).append_many(records, now=now)
    return documents


async def ask_consent(
    session: AsyncSession, case: Case, department: str, governed: Governed, now: datetime
) -> int | None:
    """Prompt the citizen for fields held back only for want of consent; the prompt's id, if one was sent."""
    wanted = [name for name, reason in governed.withheld.items() if reason is Withheld.CONSENT]
    if not wanted or case.citizen_id is None:
        return None
    prompt = await ConsentRepository(session).ask(case.citizen_id, department, wanted, case.id, now)
    if prompt is None:
        return None
    data = {"prompt": prompt.id, "fields": list(prompt.fields)}
    await notify_citizen(session, case, CONSENT_NOTICE, data, now, department=department)
    return prompt.id


async def share_after_consent(
    session: AsyncSession, citizen_id: int, department: str, fields: Sequence[str], now: datetime
) -> int:
    """After a "yes": each open case of the citizen with the department gets ``case.updated`` carrying it."""
    rows = await session.scalars(
        select(CaseRecord.id).where(
            CaseRecord.user_id == citizen_id,
            CaseRecord.department == department,
            CaseRecord.status != CaseStatus.CLOSED.value,
        )
    )
    outbox, count = OutboxRepository(session), 0
    for case_id in list(rows):
        case = await CaseRepository(session).get(case_id)
        assert case is not None
        extra = {"consent": {"granted": sorted(fields), "at": case_events.iso(now)}}
        payload = case_events.event_payload(case_events.CASE_UPDATED, new_webhook_id(), now, case, extra)
        await outbox.enqueue(case_events.CASE_UPDATED, case.id, department, payload, now)
        count += 1
    return count


def _govern(known: _Known, request: Request) -> tuple[Governed, NewRecord | None]:
    govern = govern_event if request.channel == "webhook" else govern_case
    case = known.cases.get(request.case_id)
    if case is None:
        return govern(request.document, clearance=LOWEST_CLEARANCE, consents={}, erased=True), None
    clearance = known.clearances.get(request.department, LOWEST_CLEARANCE)
    decisions = known.decisions.get((case.citizen_id or 0, request.department), {})
    original = known.originals.get(case.id, case.department)
    grants_now = field_grants(case, request.department, original, decisions)
    consents = {name: grant.granted for name, grant in grants_now.items()}
    erased = known.erased.get(case.id, True)
    governed = govern(request.document, clearance=clearance, consents=consents, erased=erased)
    return governed, _record(case, request, governed, clearance, grants_now)


def _record(
    case: Case, request: Request, governed: Governed, clearance: DataClass, grants_now: dict[str, Grant]
) -> NewRecord | None:
    """The disclosure record, when personal data goes out."""
    personal = [name for name in governed.disclosed if needs_consent(class_of(name))]
    if not personal:
        return None
    return NewRecord(
        AuditKind.DISCLOSURE,
        citizen=citizen_ref(case.citizen_id),
        department=request.department,
        ticket=case.ticket,
        fields=governed.disclosed,
        basis={
            "clearance": clearance.label,
            "consent": {name: grants_now[name].source for name in personal if name in grants_now},
        },
        details={
            "channel": request.channel,
            "withheld": {name: reason.value for name, reason in sorted(governed.withheld.items())},
            **request.details,
        },
    )


async def _load(session: AsyncSession, requests: Sequence[Request]) -> _Known:
    """Cases with their citizen's erasure and their original department in one query, then the rest."""
    case_ids = {r.case_id for r in requests}
    created = (
        select(CaseChangeRecord.data)
        .where(CaseChangeRecord.case_id == CaseRecord.id, CaseChangeRecord.kind == "created")
        .order_by(CaseChangeRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    # Columns rather than ORM objects: many rows, read once, never changed here.
    rows = await session.execute(
        select(CaseRecord.__table__, User.external_id.label("citizen_external_id"), created.label("created"))
        .outerjoin(User, User.id == CaseRecord.user_id)
        .where(CaseRecord.id.in_(case_ids))
    )
    cases, originals, erased = {}, {}, {}
    for row in rows:
        case = case_of(row)
        cases[case.id] = case
        if isinstance(row.created, dict) and row.created.get("department"):
            originals[case.id] = str(row.created["department"])
        external_id = row.citizen_external_id  # citizen_data.is_erased's rule, on the joined column
        erased[case.id] = case.citizen_id is None or external_id is None or external_id.startswith(TOMBSTONE)
    citizens = {c.citizen_id for c in cases.values() if c.citizen_id is not None}
    departments = {r.department for r in requests}
    return _Known(
        cases=cases,
        originals=originals,
        clearances=await _clearances(session, departments),
        erased=erased,
        decisions=await _decisions(session, citizens, departments),
    )


async def _originals(session: AsyncSession, case_ids: Collection[int]) -> dict[int, str]:
    """Case → the department of its ``created`` change (where the citizen sent it)."""
    if not case_ids:
        return {}
    rows = await session.execute(
        select(CaseChangeRecord.case_id, CaseChangeRecord.data)
        .where(CaseChangeRecord.case_id.in_(case_ids), CaseChangeRecord.kind == "created")
        .order_by(CaseChangeRecord.id.desc())
    )
    found: dict[int, str] = {}
    for case_id, data in rows.all():  # newest first, so the first "created" wins
        if isinstance(data, dict) and data.get("department"):
            found[case_id] = str(data["department"])
    return found


def _original_department_column() -> ColumnElement[str]:
    """A case's original department in SQL, read as :func:`_originals` reads it."""
    created = (
        select(func.nullif(CaseChangeRecord.data["department"].as_string(), ""))
        .where(CaseChangeRecord.case_id == CaseRecord.id, CaseChangeRecord.kind == "created")
        .order_by(CaseChangeRecord.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    return func.coalesce(created, CaseRecord.department)


async def _clearances(session: AsyncSession, codes: Collection[str]) -> dict[str, DataClass]:
    rows = await session.execute(
        select(Department.code, Department.clearance).where(Department.code.in_(codes))
    )
    return {code: parse_class(value, DEFAULT_CLEARANCE) for code, value in rows.all()}


async def _decisions(
    session: AsyncSession, citizens: Collection[int], departments: Collection[str]
) -> dict[tuple[int, str], dict[str, Decision]]:
    if not citizens:
        return {}
    rows = await session.scalars(
        select(ConsentRecord).where(
            ConsentRecord.user_id.in_(citizens), ConsentRecord.department.in_(departments)
        )
    )
    found: dict[tuple[int, str], dict[str, Decision]] = {}
    for row in rows:
        found.setdefault((row.user_id, row.department), {})[row.field] = Decision(
            row.granted, row.source, row.decided_at
        )
    return found
