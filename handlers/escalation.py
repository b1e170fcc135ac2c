"""Escalation: hand what the bot cannot answer to the right department as a case, and follow it.

From "talk to a department" (after no answer or an unhelpful one) or /human: pick the department (the
entry's owner, else the owner of the category, else the configured default), confirm, take a
description and, only with explicit consent, contact details, then open the case — the case and its
``case.created`` event are written in this event's unit of work. /status lists and shows cases; a case
can be added to or withdrawn. Department replies and status changes come back as notices (rendered by
:func:`notice_replies`); a resolved or closed case asks for a 1–5 rating.
"""

from __future__ import annotations

import functools
import html
import secrets
import unicodedata
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from handlers import ask, privacy
from handlers.answers import button_label
from handlers.i18n import Html, t
from handlers.kept import KEPT, kept_replies
from handlers.router import Flow, Router, Turn, parse_id, private
from handlers.types import Button, Reply
from storage.cases import (
    Case,
    CaseChangeRecord,
    CaseClosed,
    CaseError,
    CaseRepository,
    CaseStatus,
    NewCase,
    normalise_ticket,
)
from storage.citizens import for_storage
from storage.departments import DepartmentProfile, DepartmentRepository
from storage.governance import CONSENT_NOTICE
from storage.models import Question

router = Router()

DEFAULT_DEPARTMENT = "escalation.default_department"
"""Key in the Dialogue's extras: the department code for requests no entry or category routes."""
CONFIRM, DESCRIBE, CONSENT, CONTACT, ADD = (
    "esc_confirm",
    "esc_describe",
    "esc_consent",
    "esc_contact",
    "esc_add",
)
STEPS = (CONFIRM, DESCRIBE, CONSENT, CONTACT, ADD)
WAIT = timedelta(minutes=30)
"""How long a step of the escalation waits for the citizen before free text is a new question again."""
MAX_CONTACT = 500
MESSAGE_LIMIT = 4096
SHOWN_DESCRIPTION = 300


@router.command("human")
@router.button(ask.DEPARTMENT_PAYLOAD)
async def start(turn: Turn) -> list[Reply]:
    """Begin: work out the department from what the citizen asked, or ask for the topic."""
    if turn.incoming.is_group:
        return turn.say("esc_group_chat", kind="escalation_group")
    context = await _context(turn)
    if turn.incoming.command is not None and _has_words(turn.args):
        context["description"] = for_storage(turn.args)  # the draft is kept in the state: masked as stored
    if not context.get("entry_id") and not context.get("category") and turn.knowledge.kb.categories:
        return _pick_category(turn, context)  # a topic routes better than the default department
    return await _confirm(
        turn, context, await _department(turn, context.get("entry_id"), context.get("category"))
    )


@router.button("esc")
@private
async def step(turn: Turn) -> list[Reply]:
    """The buttons of the escalation steps: ``esc:<action>:<nonce>[:<value>]``.

    The nonce names the request the message was sent for: a button of an earlier request's message
    must not act on the current one (send its question, open its case), so it has expired.
    """
    action, _, rest = turn.args.partition(":")
    nonce, _, value = rest.partition(":")
    pending = turn.state.state in STEPS
    current = pending and bool(nonce) and nonce == turn.state.data.get("nonce")
    if action == "no":
        if pending and not current:  # an earlier message's Cancel leaves this request alone
            return turn.say("button_expired", kind="expired")
        if current:
            turn.state.clear()
        return _acknowledged(turn, "esc_cancelled")
    if not current or turn.state.state not in (CONFIRM, DESCRIBE, CONSENT):
        return turn.say("button_expired", kind="expired")
    if _lapsed(turn):
        turn.state.clear()
        return turn.say("esc_expired", kind="expired")
    data = dict(turn.state.data)
    if action == "cat" and turn.state.state == CONFIRM:
        data["category"] = value if turn.knowledge.category(value) is not None else None
        return await _confirm(turn, data, await _department(turn, None, data["category"]))
    if action == "yes" and turn.state.state == CONFIRM and data.get("department"):
        return _describe(turn, data) if not data.get("description") else _consent(turn, data)
    if action == "asis" and turn.state.state == DESCRIBE and data.get("question"):
        data["description"] = data["question"]
        return _consent(turn, data)
    if action == "consent" and turn.state.state == CONSENT and value in ("0", "1"):
        if value == "0":
            return await _open(turn, data, contact=None)
        turn.state.set(CONTACT, **(data | {"since": turn.now.isoformat()}))
        return turn.say("esc_contact", kind="escalation_contact", buttons=(_cancel(turn, data),))
    return turn.say("button_expired", kind="expired")


def _private_step(flow: Flow) -> Flow:
    """A step's text: in a group it is only a question there, and the step in the private chat waits on."""

    @functools.wraps(flow)
    async def in_private(turn: Turn) -> list[Reply]:
        if turn.incoming.is_group:
            return await ask.ask(turn)  # a department's reply would be posted to the group
        return await flow(turn)

    return in_private


@router.state(CONFIRM, CONSENT)
@_private_step
async def typed_instead_of_pressing(turn: Turn) -> list[Reply]:
    """Text while a button is expected: the step waits and is asked again, its buttons with it.

    Taking the text as a new question silently dropped the request, and a phone number typed at
    "may they contact you" was asked of the knowledge base.
    """
    if _lapsed(turn):
        return await _lapse(turn)
    data = dict(turn.state.data)
    if turn.state.state == CONSENT:
        prompt = _consent(turn, data)
    elif data.get("department"):
        prompt = _ask_confirmation(turn, data)
    else:
        prompt = _pick_category(turn, data)
    return [Reply(turn.t("esc_use_buttons"), kind="escalation_use_buttons"), *prompt]


@router.state(DESCRIBE)
@_private_step
async def description(turn: Turn) -> list[Reply]:
    """The description of the request."""
    if _lapsed(turn):
        return await _lapse(turn)
    text = turn.incoming.text or ""
    if not _has_words(text):
        return turn.say("esc_empty", kind="escalation_empty", buttons=(_cancel(turn, turn.state.data),))
    return _consent(turn, dict(turn.state.data) | {"description": for_storage(text)})


@router.state(CONTACT)
@_private_step
async def contact(turn: Turn) -> list[Reply]:
    """The contact details the citizen agreed to share."""
    if _lapsed(turn):
        return await _lapse(turn)
    text = (turn.incoming.text or "").strip()
    cancel = (_cancel(turn, turn.state.data),)
    if not _has_words(text):
        return turn.say("esc_empty", kind="escalation_empty", buttons=cancel)
    if len(text) > MAX_CONTACT:
        return turn.say("esc_contact_too_long", limit=MAX_CONTACT, kind="escalation_contact", buttons=cancel)
    return await _open(turn, dict(turn.state.data), contact=text)


@router.command("status", "cases")
@private
async def status(turn: Turn) -> list[Reply]:
    """``/status`` lists the citizen's cases; ``/status TR-2026-000123`` shows one."""
    repo = CaseRepository(turn.session)
    if turn.args:
        ticket = normalise_ticket(turn.args)
        case = await repo.by_ticket(ticket) if ticket else None
        if case is None or case.citizen_id != turn.citizen.id:
            return turn.say("case_not_found", ticket=turn.args[:40], kind="case_not_found")
        return await _show(turn, case)
    cases = await repo.of_citizen(turn.citizen.id)
    if not cases:
        return turn.say("cases_none", kind="cases")
    lines = [turn.t("cases_title")]
    names = await _department_names(turn)
    for case in cases:
        lines.append(
            turn.t(
                "cases_line",
                ticket=case.ticket,
                department=names.get(case.department, case.department),
                status=_status_text(turn.lang, case.status),
                date=_date(turn, case.created_at),
            )
        )
    buttons = tuple((Button(case.ticket, payload=f"case:show:{case.id}"),) for case in cases[:10])
    return [Reply("\n".join(lines), buttons=buttons, kind="cases")]


@router.button("case")
@private
async def case_button(turn: Turn) -> list[Reply]:
    """Show, add to, or withdraw one of the citizen's cases."""
    action, _, raw_id = turn.args.partition(":")
    case_id = parse_id(raw_id)
    repo = CaseRepository(turn.session)
    case = await repo.get(case_id) if case_id is not None else None
    if case is None or case.citizen_id != turn.citizen.id:
        return turn.say("button_expired", kind="expired")
    if action == "show":
        return await _show(turn, case)
    if not case.is_open:
        return turn.say("case_closed", ticket=case.ticket, kind="case_closed")
    department = await _department_name(turn, case.department)
    if action == "add":
        turn.state.set(ADD, case_id=case.id, since=turn.now.isoformat(), nonce=_nonce())
        buttons = (_cancel(turn, turn.state.data),)
        return turn.say("case_add_prompt", ticket=case.ticket, kind="case_add", buttons=buttons)
    if action == "wd":
        buttons = (
            (
                Button(turn.t("case_btn_withdraw_yes"), payload=f"case:wdy:{case.id}"),
                Button(turn.t("case_btn_keep"), payload=f"case:show:{case.id}"),
            ),
        )
        return turn.say(
            "case_withdraw_confirm",
            ticket=case.ticket,
            department=department,
            kind="case_withdraw",
            buttons=buttons,
        )
    if action == "wdy":
        await repo.withdraw(case.id, turn.citizen.id, turn.now)
        return turn.say("case_withdrawn", ticket=case.ticket, kind="case_withdrawn")
    return turn.say("button_expired", kind="expired")


@router.state(ADD)
@_private_step
async def add_information(turn: Turn) -> list[Reply]:
    """What the citizen adds to an open case; the department gets ``case.updated``."""
    if _lapsed(turn):
        return await _lapse(turn)
    text = turn.incoming.text or ""
    if not _has_words(text):
        return turn.say("esc_empty", kind="escalation_empty", buttons=(_cancel(turn, turn.state.data),))
    case_id = parse_id(str(turn.state.data.get("case_id", ""))) or 0
    turn.state.clear()
    repo = CaseRepository(turn.session)
    try:
        case = await repo.add_information(case_id, turn.citizen.id, text, turn.now)
    except CaseClosed:  # the department closed it while the citizen was typing
        closed = await repo.get(case_id)
        ticket = closed.ticket if closed is not None else ""
        return turn.say("case_closed", ticket=ticket, kind="case_closed")
    except CaseError:
        return turn.say("button_expired", kind="expired")
    department = await _department_name(turn, case.department)
    return turn.say("case_added", ticket=case.ticket, department=department, kind="case_added")


@router.button("csat")
async def satisfaction(turn: Turn) -> list[Reply]:
    """The 1–5 rating of how a finished case was handled; pressing again changes it."""
    raw_id, _, raw_score = turn.args.partition(":")
    case_id = parse_id(raw_id)
    score = int(raw_score) if raw_score in ("1", "2", "3", "4", "5") else 0
    rated = await CaseRepository(turn.session).rate(case_id or 0, turn.citizen.id, score, turn.now)
    if rated is None:
        return turn.say("button_expired", kind="expired")
    thanks = turn.t("csat_thanks")
    return [Reply(thanks, notice=thanks, kind="csat")]


def notice_replies(kind: str, data: dict[str, Any], lang: str) -> list[Reply]:
    """A queued notice as the replies to send: department reply, status change, transfer, or kept replies."""
    ticket = str(data.get("ticket", ""))
    department = _localized(data.get("department_name"), lang) or str(data.get("department", ""))
    case_id = data.get("case_id")
    reply_button = ((Button(t(lang, "notice_btn_reply"), payload=f"case:add:{case_id}"),),)
    if kind == "reply":
        head = t(lang, "notice_reply", department=department, ticket=ticket)
        text = str(data.get("text", ""))
        return _with_head(head, text, reply_button, "notice_reply")
    if kind == "status":
        status = CaseStatus(str(data.get("status", "open")))
        note = data.get("note")
        key = "notice_status_note" if note else "notice_status"
        message = t(lang, key, ticket=ticket, status=_status_text(lang, status), note=note or "")
        if status in (CaseStatus.RESOLVED, CaseStatus.CLOSED):
            stars = tuple(Button("⭐" * n, payload=f"csat:{case_id}:{n}") for n in range(1, 6))
            ask_rating = Reply(
                t(lang, "csat_ask"),
                buttons=((stars[0], stars[1], stars[2]), (stars[3], stars[4])),
                kind="csat_ask",
            )
            return [Reply(message, kind="notice_status"), ask_rating]
        return [Reply(message, buttons=reply_button, kind="notice_status")]
    if kind == "transferred":
        return [
            Reply(
                t(lang, "notice_transferred", ticket=ticket, department=department), kind="notice_transferred"
            )
        ]
    if kind == CONSENT_NOTICE:  # a consent prompt of the governance work (handlers/privacy.py)
        return privacy.consent_notice(data, lang)
    if kind == KEPT:  # replies a channel could not send in their turn, already in the citizen's language
        return kept_replies(data)
    raise ValueError(f"unknown notice kind {kind!r}")


async def _context(turn: Turn) -> dict[str, Any]:
    """What the request is about: the question asked, the entry shown, its category."""
    kind, raw = turn.args[:1], turn.args[1:]
    until = await CaseRepository(turn.session).last_message_id(turn.citizen.id)
    context: dict[str, Any] = {"until": until, "nonce": _nonce()}
    item_id = parse_id(raw) if turn.incoming.payload is not None else None
    if kind == "a" and item_id is not None:
        answer = await turn.questions.answer(item_id)
        if answer is not None and answer.citizen_id == turn.citizen.id:
            context["entry_id"], item_id, kind = answer.entry_id, answer.question_id, "q"
    if kind == "q" and item_id is not None:
        row = await turn.session.get(Question, item_id)
        if row is not None and row.user_id == turn.citizen.id:
            context["question_id"], context["question"] = row.id, row.text
            context.setdefault("entry_id", row.chosen_entry_id or None)
    entry = turn.entry(context["entry_id"]) if context.get("entry_id") else None
    if entry is not None:
        context["category"] = entry.category
    return context


async def _department(turn: Turn, entry_id: str | None, category: str | None) -> DepartmentProfile | None:
    """The entry's owner, else the category's, else the default; only enabled departments."""
    repo = DepartmentRepository(turn.session)
    entry = turn.entry(entry_id) if entry_id else None
    candidates: list[str] = [entry.department] if entry is not None and entry.department else []
    if category:
        owner = await repo.owner_of_category(category)
        if owner is not None:
            candidates.append(owner.code)
        owners = Counter(e.department for e in turn.knowledge.entries_in(category) if e.department)
        candidates += [code for code, _ in owners.most_common()]
    default = turn.extras.get(DEFAULT_DEPARTMENT)
    if default:
        candidates.append(str(default))
    for code in candidates:
        department = await repo.get(code)
        if department is not None and department.enabled:
            return department
    return None


def _pick_category(turn: Turn, context: dict[str, Any]) -> list[Reply]:
    turn.state.set(CONFIRM, **(context | {"since": turn.now.isoformat()}))
    rows: list[tuple[Button, ...]] = [
        (Button(button_label(turn.localized(c.name) or c.code), payload=_payload(context, "cat", c.code)),)
        for c in turn.knowledge.kb.categories
        if len(_payload(context, "cat", c.code).encode()) <= 64
    ]
    rows.append((Button(turn.t("esc_btn_other"), payload=_payload(context, "cat", "-")),))
    rows.append(_cancel(turn, context))
    return [Reply(turn.t("esc_pick_category"), buttons=tuple(rows), kind="escalation_topic")]


async def _confirm(turn: Turn, context: dict[str, Any], department: DepartmentProfile | None) -> list[Reply]:
    if department is None:
        turn.state.clear()
        return turn.say("esc_no_department", kind="escalation_unavailable")
    chosen = {"department": department.code, "department_name": department.name}
    return _ask_confirmation(turn, context | chosen)


def _ask_confirmation(turn: Turn, data: dict[str, Any]) -> list[Reply]:
    turn.state.set(CONFIRM, **(data | {"since": turn.now.isoformat()}))
    yes = Button(turn.t("esc_btn_yes"), payload=_payload(data, "yes"))
    no = Button(turn.t("esc_btn_no"), payload=_payload(data, "no"))
    department = _department_label(turn, data)
    return turn.say("esc_confirm", department=department, kind="escalation_confirm", buttons=((yes, no),))


def _department_label(turn: Turn, data: dict[str, Any]) -> str:
    """The draft's department as the citizen reads it: its name in their language, else its code."""
    return _localized(data.get("department_name"), turn.lang) or str(data.get("department", ""))


def _describe(turn: Turn, data: dict[str, Any]) -> list[Reply]:
    turn.state.set(DESCRIBE, **(data | {"since": turn.now.isoformat()}))
    question = data.get("question")
    if question:
        buttons = ((Button(turn.t("esc_btn_as_is"), payload=_payload(data, "asis")),), _cancel(turn, data))
        shown = question if len(question) <= SHOWN_DESCRIPTION else question[: SHOWN_DESCRIPTION - 1] + "…"
        return turn.say(
            "esc_describe_with_question", question=shown, kind="escalation_describe", buttons=buttons
        )
    return turn.say("esc_describe", kind="escalation_describe", buttons=(_cancel(turn, data),))


def _consent(turn: Turn, data: dict[str, Any]) -> list[Reply]:
    turn.state.set(CONSENT, **(data | {"since": turn.now.isoformat()}))
    buttons = (
        (Button(turn.t("esc_btn_consent_yes"), payload=_payload(data, "consent", "1")),),
        (Button(turn.t("esc_btn_consent_no"), payload=_payload(data, "consent", "0")),),
        _cancel(turn, data),
    )
    department = _department_label(turn, data)
    return turn.say("esc_consent", department=department, kind="escalation_consent", buttons=buttons)


async def _open(turn: Turn, data: dict[str, Any], *, contact: str | None) -> list[Reply]:
    """Create the case (and its case.created event, in this unit of work) and give the citizen the ticket."""
    incoming = turn.incoming
    if incoming.is_group:  # its chat would get the department's replies; the private step waits on
        return turn.say("esc_group_chat", kind="escalation_group")
    new = NewCase(
        citizen_id=turn.citizen.id,
        channel=incoming.channel,
        chat_id=incoming.chat_id,
        language=turn.lang,
        department=str(data["department"]),
        description=str(data.get("description", "")),
        contact=contact,
        contact_consent_at=turn.now if contact else None,
        entry_id=data.get("entry_id"),
        category=data.get("category"),
        question_id=data.get("question_id"),
        excerpt_until=data.get("until"),
    )
    turn.state.clear()
    try:
        case = await CaseRepository(turn.session).open_case(new, turn.now, zone=turn.zone)
    except CaseError:
        return turn.say("esc_no_department", kind="escalation_unavailable")
    department = await _department_name(turn, case.department)
    buttons = ((Button(turn.t("case_btn_add"), payload=f"case:add:{case.id}"),),)
    return turn.say(
        "esc_created", ticket=case.ticket, department=department, kind="case_created", buttons=buttons
    )


async def _show(turn: Turn, case: Case) -> list[Reply]:
    department = await _department_name(turn, case.department)
    description = case.description
    if len(description) > SHOWN_DESCRIPTION:
        description = description[: SHOWN_DESCRIPTION - 1] + "…"
    text = turn.t(
        "case_show",
        ticket=case.ticket,
        department=department,
        status=_status_text(turn.lang, case.status),
        date=_date(turn, case.created_at),
        description=description,
    )
    last = await turn.session.scalar(
        select(CaseChangeRecord)
        .where(CaseChangeRecord.case_id == case.id, CaseChangeRecord.kind == "reply")
        .order_by(CaseChangeRecord.id.desc())
        .limit(1)
    )
    if last is not None and last.text:
        room = MESSAGE_LIMIT - len(text) - 100
        reply = last.text if len(last.text) <= room else last.text[: max(room, 0)] + "…"
        text = Html(text + turn.t("case_last_reply", date=_date(turn, last.created_at), text=reply))
    buttons: tuple[tuple[Button, ...], ...] = ()
    if case.is_open:
        buttons = (
            (
                Button(turn.t("case_btn_add"), payload=f"case:add:{case.id}"),
                Button(turn.t("case_btn_withdraw"), payload=f"case:wd:{case.id}"),
            ),
        )
    return [Reply(text, buttons=buttons, kind="case")]


async def _department_name(turn: Turn, code: str) -> str:
    department = await DepartmentRepository(turn.session).get(code)
    return department.display_name(turn.lang) if department is not None else code


async def _department_names(turn: Turn) -> dict[str, str]:
    return {d.code: d.display_name(turn.lang) for d in await DepartmentRepository(turn.session).all()}


def _with_head(head: str, text: str, buttons: tuple[tuple[Button, ...], ...], kind: str) -> list[Reply]:
    body = Html(head + "\n\n" + _escape(text))
    if len(body) <= MESSAGE_LIMIT:
        return [Reply(body, buttons=buttons, kind=kind)]
    return [Reply(Html(head), kind=kind), Reply(Html(_escape(text)), buttons=buttons, kind=kind)]


def _escape(text: str) -> str:
    return html.escape(text, quote=False)


def _status_text(lang: str, status: CaseStatus) -> str:
    return t(lang, f"status_{status.value}")


def _localized(names: Any, lang: str) -> str:
    if not isinstance(names, dict):
        return ""
    return str(names.get(lang) or next((v for v in names.values() if v), ""))


def _date(turn: Turn, moment: datetime) -> str:
    """A stored moment as the citizen's calendar date: the service desk's, not UTC's."""
    return f"{turn.local(moment):%Y-%m-%d}"


def _cancel(turn: Turn, data: dict[str, Any]) -> tuple[Button, ...]:
    return (Button(turn.t("esc_btn_cancel"), payload=_payload(data, "no")),)


def _nonce() -> str:
    """A new request's name in its buttons' payloads: short, as Telegram allows 64 bytes of them."""
    return secrets.token_hex(3)


def _payload(data: dict[str, Any], action: str, value: str | None = None) -> str:
    """``esc:<action>:<nonce>[:<value>]`` for a step of the request ``data`` is the draft of."""
    nonce = str(data.get("nonce", ""))
    return f"esc:{action}:{nonce}" if value is None else f"esc:{action}:{nonce}:{value}"


def _acknowledged(turn: Turn, key: str) -> list[Reply]:
    text = turn.t(key)
    return [Reply(text, notice=text, kind="escalation_cancelled")]


def _lapsed(turn: Turn) -> bool:
    """Whether the step the citizen is answering was started more than :data:`WAIT` ago."""
    try:
        since = datetime.fromisoformat(str(turn.state.data.get("since", "")))
    except ValueError:
        return True
    return since.tzinfo is None or turn.now - since > WAIT


async def _lapse(turn: Turn) -> list[Reply]:
    turn.state.clear()
    return await ask.ask(turn)


def _has_words(text: str) -> bool:
    """Whether text says anything: a letter, digit or symbol, not just punctuation or spaces."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


