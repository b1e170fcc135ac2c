"""A citizen's data rights: /mydata (everything held, as a file), /forget (erase it), /privacy and consent.

Consent prompts reach the citizen as notices (kind ``consent``, rendered by :func:`consent_notice`) when a
department would need a field the citizen has not decided on; the answer buttons are ``consent:<id>:1|0``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from handlers.i18n import Html, t
from handlers.router import Router, Turn, parse_id, private
from handlers.types import FORGOTTEN, Button, Document, Reply
from storage import citizen_data
from storage.audit import AuditKind, AuditLog, citizen_ref
from storage.classification import FIELD_CLASSES
from storage.consent import Answered, ConsentRepository
from storage.departments import DepartmentRepository
from storage.governance import granted_by_cases, share_after_consent
from storage.numbers import whole_number

router = Router()

FORGET_WINDOW = timedelta(minutes=15)
"""How long the /forget confirmation buttons stay valid."""
FIELD_KEYS = frozenset(FIELD_CLASSES)


@router.command("mydata")
@private
async def mydata(turn: Turn) -> list[Reply]:
    """Send the citizen everything held about them, as a JSON document."""
    document = await citizen_data.collect(turn.session, turn.citizen.id, turn.now)
    await AuditLog(turn.session).append(
        AuditKind.ACCESS, now=turn.now, citizen=citizen_ref(turn.citizen.id), details={"by": "citizen"}
    )
    content = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8")
    name = f"mydata-{citizen_ref(turn.citizen.id)}-{turn.today:%Y%m%d}.json"
    return [Reply(turn.t("mydata_sent"), document=Document(name, content), kind="mydata")]


@router.command("forget")
@private
async def forget(turn: Turn) -> list[Reply]:
    """Ask for confirmation before erasing; the buttons lapse after FORGET_WINDOW."""
    issued = int(turn.now.timestamp())
    buttons = (
        (Button(turn.t("btn_forget_yes"), payload=f"forget:yes:{issued}"),),
        (Button(turn.t("btn_forget_no"), payload="forget:no"),),
    )
    return turn.say("forget_confirm", kind="forget_confirm", buttons=buttons)


@router.button("forget")
async def forget_answer(turn: Turn) -> list[Reply]:
    """Erase everything personal of the citizen after a fresh confirmation."""
    answer, _, issued = turn.args.partition(":")
    if answer != "yes":
        return [Reply(turn.t("forget_cancelled"), replace=True, kind="forget_cancelled")]
    issued_at = whole_number(issued)
    age = turn.now.timestamp() - issued_at if issued_at is not None else None
    if age is None or not -60 <= age <= FORGET_WINDOW.total_seconds():
        return [Reply(turn.t("forget_expired"), replace=True, kind="expired")]
    await citizen_data.erase(turn.session, turn.citizen.id, turn.now)
    turn.state.clear()
    # An edit of the confirmation, not a new message: nothing of this exchange is stored afterwards.
    return [Reply(turn.t("forget_done"), replace=True, kind=FORGOTTEN)]


@router.command("privacy")
@private
async def privacy(turn: Turn) -> list[Reply]:
    """Which departments may receive which of the citizen's details, with a button to withdraw each."""
    shared = await _shared(turn)
    if not shared:
        return turn.say("privacy_none", kind="privacy")
    departments = DepartmentRepository(turn.session)
    lines, rows = [turn.t("privacy_title")], []
    for code, fields in sorted(shared.items()):
        found = await departments.get(code)
        name = found.display_name(turn.lang) if found is not None else code
        lines.append(turn.t("privacy_line", department=name, fields=field_names(turn.lang, fields)))
        rows.append((Button(turn.t("btn_withdraw", department=name)[:60], payload=f"revoke:{code}"),))
    lines.append(turn.t("privacy_footer"))
    return [Reply(Html("\n".join(lines)), buttons=tuple(rows), kind="privacy")]


@router.button("revoke")
async def revoke(turn: Turn) -> list[Reply]:
    """Withdraw every consent for one department."""
    code = turn.args
    department = await DepartmentRepository(turn.session).get(code) if code else None
    if department is None:
        return turn.say("button_expired", kind="expired")
    await ConsentRepository(turn.session).withdraw(turn.citizen.id, code, turn.now)
    text = turn.t("privacy_withdrawn", department=department.display_name(turn.lang))
    return [Reply(text, notice=text, kind="privacy_withdrawn")]


@router.button("consent")
async def consent(turn: Turn) -> list[Reply]:
    """The answer to a consent prompt; out-of-order and repeated answers have defined results."""
    raw_id, _, value = turn.args.partition(":")
    request_id = parse_id(raw_id)
    if request_id is None or value not in ("0", "1"):
        return turn.say("button_expired", kind="expired")
    repo = ConsentRepository(turn.session)
    result = await repo.answer(request_id, turn.citizen.id, granted=value == "1", now=turn.now)
    if result.outcome is Answered.NOT_FOUND or result.department is None:
        return turn.say("button_expired", kind="expired")
    if result.granted and result.applied:
        await share_after_consent(turn.session, turn.citizen.id, result.department, result.applied, turn.now)
    found = await DepartmentRepository(turn.session).get(result.department)
    name = found.display_name(turn.lang) if found is not None else result.department
    key = {
        Answered.ALREADY: "consent_already",
        Answered.STALE: "consent_stale",
        Answered.PARTLY: "consent_partly",
    }.get(result.outcome, "consent_granted" if result.granted else "consent_refused")
    text = turn.t(key, department=name)
    return [Reply(text, notice=text, kind="consent")]


def consent_notice(data: dict[str, Any], lang: str) -> list[Reply]:
    """A consent prompt queued as a notice, as the reply to send (see storage/governance.py)."""
    prompt = int(data["prompt"])
    names = data.get("department_name")
    department = (names.get(lang) or next(iter(names.values()), "")) if isinstance(names, dict) else ""
    text = t(
        lang,
        "consent_ask",
        department=department or str(data.get("department", "")),
        ticket=str(data.get("ticket", "")),
        fields=field_names(lang, data.get("fields") or []),
    )
    buttons = (
        (
            Button(t(lang, "btn_consent_share"), payload=f"consent:{prompt}:1"),
            Button(t(lang, "btn_consent_keep"), payload=f"consent:{prompt}:0"),
        ),
    )
    return [Reply(text, buttons=buttons, kind="consent_ask")]


def field_names(lang: str, fields: Iterable[Any]) -> str:
    """Fields in the citizen's words: "what you wrote, your contact details"."""
    keys = [f"field_{f}" if f in FIELD_KEYS else "field_other" for f in fields]
    separator = "、" if lang == "zh" else ", "
    return separator.join(dict.fromkeys(t(lang, key) for key in keys))


async def _shared(turn: Turn) -> dict[str, set[str]]:
    """Department → fields it may receive now: consents implied by cases, then explicit decisions."""
    shared = await granted_by_cases(turn.session, turn.citizen.id)
    # Departments of the citizen's cases are settled by their cases; the others only by explicit decisions.
    decisions = await ConsentRepository(turn.session).all_decisions(turn.citizen.id)
    for department, fields in decisions.items():
        if department not in shared:
            shared[department] = {name for name, decision in fields.items() if decision.granted}
    return {code: fields for code, fields in shared.items() if fields}
