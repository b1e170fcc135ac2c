"""Consent: asked once per department at a time, remembered, revocable; answers out of order are defined."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.audit import AuditKind, AuditLog
from storage.citizens import CitizenRepository
from storage.consent import CONSENTABLE, Answered, ConsentRepository, Source

Sessions = async_sessionmaker[AsyncSession]
NOW = datetime(2026, 11, 23, 9, 30, tzinfo=UTC)


async def citizen(sessions: Sessions, user: str = "42") -> int:
    async with sessions.begin() as session:
        return (await CitizenRepository(session).get_or_create("test", user, now=NOW)).id


async def test_one_prompt_per_department_at_a_time(sessions: Sessions) -> None:
    me = await citizen(sessions)
    async with sessions.begin() as session:
        repo = ConsentRepository(session)
        first = await repo.ask(me, "TAX", ["contact"], None, NOW)
        again = await repo.ask(me, "TAX", ["free_text"], None, NOW)
        other = await repo.ask(me, "HOUSING", ["contact"], None, NOW)
        nothing = await repo.ask(me, "LAND", [], None, NOW)
    assert first is not None
    assert other is not None
    assert again is None
    assert nothing is None


async def test_a_yes_is_remembered_and_audited(sessions: Sessions) -> None:
    me = await citizen(sessions)
    async with sessions.begin() as session:
        prompt = await ConsentRepository(session).ask(me, "TAX", ["contact", "free_text"], None, NOW)
    assert prompt is not None
    async with sessions.begin() as session:
        result = await ConsentRepository(session).answer(prompt.id, me, granted=True, now=NOW + timedelta(1))
    assert (result.outcome, result.applied) == (Answered.RECORDED, ("contact", "free_text"))
    async with sessions() as session:
        decisions = await ConsentRepository(session).decisions(me, "TAX")
        [record] = await AuditLog(session).search(kind=AuditKind.CONSENT)
    assert {name: d.granted for name, d in decisions.items()} == {"contact": True, "free_text": True}
    assert record.basis == {"granted": True, "source": "prompt"}
    assert record.department == "TAX"


async def test_answers_to_prompts_of_two_departments_in_reverse_order_both_count(sessions: Sessions) -> None:
    me = await citizen(sessions)
    async with sessions.begin() as session:
        repo = ConsentRepository(session)
        tax = await repo.ask(me, "TAX", ["contact"], None, NOW)
        housing = await repo.ask(me, "HOUSING", ["contact"], None, NOW + timedelta(seconds=1))
    assert tax is not None
    assert housing is not None
    async with sessions.begin() as session:
        repo = ConsentRepository(session)
        assert (
            await repo.answer(housing.id, me, granted=False, now=NOW + timedelta(2))
        ).outcome is Answered.RECORDED
        assert (
            await repo.answer(tax.id, me, granted=True, now=NOW + timedelta(3))
        ).outcome is Answered.RECORDED


async def test_an_old_yes_does_not_undo_a_later_no_but_a_no_always_counts(sessions: Sessions) -> None:
    me = await citizen(sessions)
    async with sessions.begin() as session:
        repo = ConsentRepository(session)
        old = await repo.ask(me, "TAX", ["contact", "free_text"], None, NOW)
        assert old is not None
        await repo.decide(
            me, "TAX", ["contact"], granted=False, source=Source.PRIVACY, now=NOW + timedelta(1)
        )
        result = await repo.answer(old.id, me, granted=True, now=NOW + timedelta(2))
    assert (result.outcome, result.applied) == (Answered.PARTLY, ("free_text",))
    async with sessions.begin() as session:
        repo = ConsentRepository(session)
        second = await repo.ask(me, "TAX", ["contact"], None, NOW)  # asked before the later "no"
        assert second is not None
        assert (
            await repo.answer(second.id, me, granted=False, now=NOW + timedelta(3))
        ).outcome is Answered.RECORDED
        assert (
            await repo.answer(second.id, me, granted=True, now=NOW + timedelta(4))
        ).outcome is Answered.ALREADY
        assert (await repo.answer(second.id, 999, granted=True, now=NOW)).outcome is Answered.NOT_FOUND
        decisions = await repo.decisions(me, "TAX")
    assert decisions["contact"].granted is False
    assert decisions["free_text"].granted is True


async def test_withdrawing_refuses_every_consentable_field(sessions: Sessions) -> None:
    me = await citizen(sessions)
    async with sessions.begin() as session:
        await ConsentRepository(session).withdraw(me, "TAX", NOW)
        decisions = await ConsentRepository(session).decisions(me, "TAX")
    assert set(decisions) == set(CONSENTABLE)
    assert not any(d.granted for d in decisions.values())
    assert {"free_text", "contact", "national_id", "phone"} <= set(CONSENTABLE)
