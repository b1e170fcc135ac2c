"""/mydata, /forget, /privacy and consent prompts as a citizen meets them; stored free text is masked."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers.dialogue import Dialogue
from handlers.escalation import notice_replies
from storage.audit import AuditKind, AuditLog
from storage.cases import CaseRecord, CaseRepository, CaseStatus, NewCase
from storage.citizen_data import TOMBSTONE
from storage.consent import ConsentRepository
from storage.models import Message, Question, User
from storage.outbox import OutboxEvent
from storage.suggestions import SuggestionRepository
from tests.handlers.conftest import NOW, payloads, said
from tests.handlers.test_escalation import UNKNOWN, open_case_by_dialogue

Sessions = async_sessionmaker[AsyncSession]
PHONE = "13812345678"


async def test_stored_messages_and_questions_have_personal_data_masked(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said(f"my ID card expired, call me on {PHONE} or zhang@example.cn"))
    async with sessions() as session:
        texts = list(await session.scalars(select(Message.text)))
        texts += list(await session.scalars(select(Question.text)))
    assert texts
    assert all(PHONE not in text and "zhang@example.cn" not in text for text in texts)
    assert any("138****5678" in text and "z***@example.cn" in text for text in texts)


async def test_mydata_sends_everything_held_as_json_and_is_audited(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said("How do I renew my identity card?"))
    replies = await dialogue.handle(said("/mydata"))
    [reply] = replies
    assert reply.kind == "mydata"
    assert reply.document is not None
    assert reply.document.filename.endswith(".json")
    document = json.loads(reply.document.content)
    assert document["profile"]["chat_id"] == "42"
    assert document["questions"][0]["text"] == "How do I renew my identity card?"
    assert document["answers"][0]["entry"] == "id-card-renew"
    assert {"messages", "cases", "feedback", "consents", "disclosures", "web_chat"} <= document.keys()
    async with sessions() as session:
        [record] = await AuditLog(session).search(kind=AuditKind.ACCESS)
    assert record.citizen_ref == document["citizen"]


async def test_mydata_lists_as_suggestions_only_did_you_mean_picks_of_an_entry(dialogue: Dialogue) -> None:
    # An entry, then "none of these".
    for asked, pressed in (("identity card", 0), ("identity card please", -1)):
        options = payloads(await dialogue.handle(said(asked)))
        await dialogue.handle(said(payload=options[pressed]))
    [reply] = await dialogue.handle(said("/mydata"))
    assert reply.document is not None
    suggestions = json.loads(reply.document.content)["suggestions"]
    assert [s["text"] for s in suggestions] == ["identity card"]
    assert suggestions[0]["entry_id"]


async def test_forget_asks_first_and_no_keeps_everything(dialogue: Dialogue, sessions: Sessions) -> None:
    await dialogue.handle(said("How do I renew my identity card?"))
    replies = await dialogue.handle(said("/forget"))
    assert replies[0].kind == "forget_confirm"
    assert "forget:no" in payloads(replies)
    replies = await dialogue.handle(said(payload="forget:no"))
    assert replies[0].kind == "forget_cancelled"
    async with sessions() as session:
        assert (await session.scalar(select(func.count()).select_from(Message)) or 0) > 0


async def test_forget_erases_everything_personal_and_keeps_the_counts(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said(f"How do I renew my identity card? {PHONE}"))
    await dialogue.handle(said(UNKNOWN))
    async with sessions() as session:
        decisions = sorted(await session.scalars(select(Question.decision)))
    confirm = await dialogue.handle(said("/forget"))
    [yes] = [p for p in payloads(confirm) if p.startswith("forget:yes")]
    replies = await dialogue.handle(said(payload=yes))
    assert replies[0].kind == "forgotten"
    assert replies[0].replace
    async with sessions() as session:
        user = (await session.scalars(select(User))).one()
        assert user.external_id == f"{TOMBSTONE}{user.id}"
        assert await session.scalar(select(func.count()).select_from(Message)) == 0
        questions = list(await session.scalars(select(Question)))
        [erasure] = await AuditLog(session).search(kind=AuditKind.ERASURE)
    assert [q.text for q in questions] == ["", ""]
    assert sorted(q.decision for q in questions) == decisions
    assert erasure.citizen_ref == f"C{user.id}"
    written = {key: value for key, value in erasure.to_json().items() if key != "hash"}  # hex may hold "42"
    assert "42" not in json.dumps(written)


async def forget(dialogue: Dialogue, user: str = "42") -> None:
    confirm = await dialogue.handle(said("/forget", user=user))
    [yes] = [p for p in payloads(confirm) if p.startswith("forget:yes")]
    await dialogue.handle(said(payload=yes, user=user))


async def test_forget_takes_back_a_phrasing_staff_rejected_unless_others_chose_it_too(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    """A rejected phrasing is still the citizen's words: only theirs, it goes; also others', it stays."""
    for user, asked in (("42", "identity card"), ("42", "id card please"), ("43", "id card please")):
        offered = payloads(await dialogue.handle(said(asked, user=user)))
        await dialogue.handle(said(payload=offered[0], user=user))
    async with sessions.begin() as session:
        repo = SuggestionRepository(session)
        for suggestion in await repo.listing():
            await repo.reject(suggestion.id)
    await forget(dialogue)
    async with sessions() as session:
        kept = await SuggestionRepository(session).listing(None)
    assert [(s.text, s.times_chosen, s.status) for s in kept] == [("id card please", 1, "rejected")]


async def test_after_forget_the_same_chat_starts_afresh(dialogue: Dialogue, sessions: Sessions) -> None:
    confirm = await dialogue.handle(said("/forget"))
    [yes] = [p for p in payloads(confirm) if p.startswith("forget:yes")]
    await dialogue.handle(said(payload=yes))
    await dialogue.handle(said("hello again"))
    async with sessions() as session:
        users = list(await session.scalars(select(User).order_by(User.id)))
    assert [u.external_id for u in users] == [f"{TOMBSTONE}{users[0].id}", "42"]


async def test_a_stale_forget_confirmation_erases_nothing(sessions: Sessions, dialogue: Dialogue) -> None:
    confirm = await dialogue.handle(said("/forget"))
    [yes] = [p for p in payloads(confirm) if p.startswith("forget:yes")]
    later = Dialogue(dialogue.sessions, dialogue.knowledge, clock=lambda: NOW + timedelta(hours=1))
    replies = await later.handle(said(payload=yes))
    assert replies[0].kind == "expired"
    for forged in ("forget:yes:abc", "forget:yes:", "forget:yes:99999999999999999999"):
        assert (await later.handle(said(payload=forged)))[0].kind == "expired"
    async with sessions() as session:
        assert (await session.scalars(select(User.external_id))).one() == "42"


async def test_forget_closes_open_cases_and_tells_the_department_without_personal_data(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await open_case_by_dialogue(dialogue)
    confirm = await dialogue.handle(said("/forget"))
    [yes] = [p for p in payloads(confirm) if p.startswith("forget:yes")]
    await dialogue.handle(said(payload=yes))
    async with sessions() as session:
        case = (await session.scalars(select(CaseRecord))).one()
        events = list(await session.scalars(select(OutboxEvent).order_by(OutboxEvent.id)))
    assert case.status == CaseStatus.CLOSED
    assert case.description == ""
    assert case.department == "TAX"
    assert [(e.type, e.department) for e in events] == [("case.created", "TAX"), ("case.closed", "TAX")]
    assert events[1].payload["data"]["reason"] == "erased"
    for event in events:
        assert UNKNOWN not in json.dumps(event.payload, ensure_ascii=False)


async def test_privacy_lists_departments_and_withdraws(dialogue: Dialogue, sessions: Sessions) -> None:
    assert (await dialogue.handle(said("/privacy")))[0].kind == "privacy"
    assert "No department" in (await dialogue.handle(said("/privacy")))[0].text
    await open_case_by_dialogue(dialogue)
    replies = await dialogue.handle(said("/privacy"))
    assert "Tax Bureau" in replies[0].text
    assert "what you wrote" in replies[0].text
    assert "revoke:TAX" in payloads(replies)
    replies = await dialogue.handle(said(payload="revoke:TAX"))
    assert replies[0].kind == "privacy_withdrawn"
    assert "No department" in (await dialogue.handle(said("/privacy")))[0].text
    assert (await dialogue.handle(said(payload="revoke:NOPE")))[0].kind == "expired"


async def test_privacy_offers_to_withdraw_from_a_department_whose_cases_are_all_old(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await open_case_by_dialogue(dialogue)  # TAX, its text shared by escalating
    async with sessions.begin() as session:
        citizen = (await session.scalars(select(User))).one()
        cases = CaseRepository(session)
        await cases.open_case(NewCase(citizen.id, "telegram", "42", "en", "TAX", "call me", contact=PHONE,
                                      contact_consent_at=NOW), NOW)
        await cases.open_case(NewCase(citizen.id, "telegram", "42", "en", "TAX", "again"), NOW)
        for n in range(1, 101):
            new = NewCase(citizen.id, "telegram", "42", "en", "REGISTRY", f"case {n}")
            await cases.open_case(new, NOW + timedelta(minutes=n))
    replies = await dialogue.handle(said("/privacy"))
    assert {"revoke:TAX", "revoke:REGISTRY"} <= set(payloads(replies))
    [line] = [line for line in replies[0].text.splitlines() if "Tax Bureau" in line]
    assert "what you wrote" in line
    assert "contact details" in line  # from an older TAX case
    await dialogue.handle(said(payload="revoke:TAX"))
    assert "revoke:TAX" not in payloads(await dialogue.handle(said("/privacy")))


async def test_consent_prompts_render_with_share_and_keep_buttons() -> None:
    data = {"prompt": 7, "ticket": "TX-2026-000001", "department": "TAX", "fields": ["free_text", "contact"]}
    [reply] = notice_replies(
        "consent", data | {"department_name": {"en": "Tax Bureau", "zh": "税务局"}}, "zh"
    )
    assert "税务局" in reply.text
    assert "您所写的内容、您的联系方式" in reply.text
    assert payloads([reply]) == ["consent:7:1", "consent:7:0"]


async def test_consent_answers_out_of_order_have_defined_results(
    dialogue: Dialogue, sessions: Sessions
) -> None:
    await dialogue.handle(said("hello"))
    async with sessions.begin() as session:
        citizen = (await session.scalars(select(User))).one()
        repo = ConsentRepository(session)
        first = await repo.ask(citizen.id, "TAX", ["contact"], None, NOW)
        assert first is not None
        await repo.withdraw(citizen.id, "TAX", NOW + timedelta(minutes=1))
    late = Dialogue(dialogue.sessions, dialogue.knowledge, clock=lambda: NOW + timedelta(minutes=2))
    assert "later" in (await late.handle(said(payload=f"consent:{first.id}:1")))[0].text  # stale yes
    assert "already answered" in (await late.handle(said(payload=f"consent:{first.id}:0")))[0].text
    assert (await late.handle(said(payload="consent:999:1")))[0].kind == "expired"
    assert (await late.handle(said(payload="consent:x:1")))[0].kind == "expired"
    assert (await late.handle(said(payload=f"consent:{first.id}:2")))[0].kind == "expired"
    async with sessions() as session:
        decisions = await ConsentRepository(session).decisions(citizen.id, "TAX")
    assert decisions["contact"].granted is False
