"""Free-text questions: the matcher's three outcomes and "did you mean" choices."""

from __future__ import annotations

import logging

from handlers.answers import answer_reply, entry_label
from handlers.router import Router, Turn, parse_id
from handlers.smalltalk import small_talk
from handlers.types import Button, Reply
from knowledge.matcher import Decision, Match
from storage.numbers import whole_number
from storage.questions import NewQuestion
from storage.suggestions import SuggestionRepository

log = logging.getLogger(__name__)
router = Router()

DEPARTMENT_PAYLOAD = "human"
"""Payload of "talk to a department": ``human``, ``human:q<question>``, ``human:a<answer>`` (escalation)."""


@router.on_text
@router.reads_no_messages
async def ask(turn: Turn) -> list[Reply]:
    """Answer, ask "did you mean", or admit there is no answer and offer a department."""
    text = turn.incoming.text or ""
    friendly = small_talk(turn, text)
    if friendly is not None:
        return friendly
    match = turn.knowledge.matcher.match(text, turn.lang, today=turn.today)
    question = _question(turn, text, match)
    best = match.best if match.decision is Decision.ANSWER else None
    entry = turn.entry(best.entry_id) if best is not None else None
    answer_id: int | None = None
    if best is not None and entry is not None:
        question_id, answer_id = await turn.questions.record_matched(
            turn.citizen.id, question, entry.id, best.score, now=turn.now)
    else:
        question_id = await turn.questions.record_question(turn.citizen.id, question, now=turn.now)
    # DEBUG: the questions table keeps the same for every question; an INFO line each cost masking CPU.
    log.debug("question %d: %s (%s)", question_id, match.decision.value, match.reason)
    if entry is not None and answer_id is not None:
        return [answer_reply(turn, entry, answer_id)]
    if match.decision is not Decision.NONE:
        choices = _clarify_buttons(turn, match, question_id)
        if choices:
            return [Reply(turn.t("clarify"), buttons=choices, kind="clarify")]
    return fallback(turn, question_id)


def fallback(turn: Turn, question_id: int | None = None) -> list[Reply]:
    """Say plainly that there is no answer, and offer a department."""
    payload = DEPARTMENT_PAYLOAD if question_id is None else f"{DEPARTMENT_PAYLOAD}:q{question_id}"
    buttons = (
        (Button(turn.t("btn_talk_department"), payload=payload),),
        (Button(turn.t("btn_menu"), payload="menu:1"),),
    )
    return [Reply(turn.t("fallback"), buttons=buttons, kind="fallback")]


@router.button("pick")
async def pick(turn: Turn) -> list[Reply]:
    """The citizen chose an entry from "did you mean" (or none of them)."""
    question_id, _, choice = turn.args.partition(":")
    asked_id = parse_id(question_id)
    asked = await turn.questions.question(asked_id) if asked_id is not None else None
    if asked is None or asked.citizen_id != turn.citizen.id:
        return turn.say("button_expired", kind="expired")
    # The first choice stands: pressing the buttons again shows their answers but counts no more picks,
    # so one citizen cannot inflate a phrasing, and erasure, which takes back the chosen entry's pick,
    # leaves none of their words behind.
    first = asked.chosen_entry_id is None
    chosen = whole_number(choice, 0, len(asked.candidates) - 1)
    if chosen is None:
        if first:
            await turn.questions.choose(asked.id, None)
        return fallback(turn, asked.id)
    entry_id = str(asked.candidates[chosen]["entry_id"])
    entry = turn.entry(entry_id)
    if entry is None:
        return turn.say("entry_gone", kind="expired")
    if first:  # the question also becomes a suggested phrasing of the entry (`govbot kb suggestions`)
        answer_id = await SuggestionRepository(turn.session).record_first_pick(
            asked.id, asked.text, entry.id, citizen_id=turn.citizen.id, now=turn.now)
    else:
        answer_id = await turn.questions.record_answer(
            turn.citizen.id, entry.id, how="picked", question_id=asked.id, now=turn.now)
    return [answer_reply(turn, entry, answer_id)]


def _clarify_buttons(turn: Turn, match: Match, question_id: int) -> tuple[tuple[Button, ...], ...]:
    rows: list[tuple[Button, ...]] = []
    for index, candidate in enumerate(match.clarify_candidates()):
        entry = turn.entry(candidate.entry_id)
        if entry is not None:
            rows.append(
                (Button(entry_label(turn, entry), payload=f"pick:{question_id}:{index}"),)
            )
    if rows:
        rows.append((Button(turn.t("btn_none_of_these"), payload=f"pick:{question_id}:none"),))
    return tuple(rows)


def _question(turn: Turn, text: str, match: Match) -> NewQuestion:
    # "Did you mean" buttons refer to candidates by position: the offered ones come first.
    offered = match.clarify_candidates()
    ranked = list(offered) + [c for c in match.candidates[:5] if c not in offered]
    return NewQuestion(
        text,
        normalised=match.normalised,
        language=turn.lang,
        decision=match.decision.value,
        reason=match.reason,
        candidates=[{"entry_id": c.entry_id, "score": round(c.score, 4)} for c in ranked],
        signals={k: round(v, 4) for k, v in match.signals.items()},
    )
