"""Feedback: helpful / not helpful on answers, "what was missing?", and comments or complaints (/feedback).

A citizen waiting to be asked for a comment is in a dialogue state; the next text message is the comment
(one message, optional). A command abandons the wait, and so does time: after :data:`WAIT` the text is
read as a new question again, so a citizen who ignored the prompt is not misunderstood later.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime, timedelta

from handlers import ask
from handlers.router import Router, Turn, parse_id
from handlers.types import Button, Reply
from storage.feedback import MAX_FEEDBACK_CHARS, FeedbackKind, FeedbackRepository, SavedFeedback
from storage.questions import RateResult, Rating

router = Router()

MISSING = "feedback_missing"
"""Waiting for what an answer rated not helpful was missing; data: answer_id, since."""
COMMENT = "feedback_comment"
"""Waiting for a comment or complaint after /feedback; data: kind, since."""
WAIT = timedelta(minutes=15)
"""How long a prompt for a comment stays open."""
PAYLOAD = "fb"

_RATED = {
    RateResult.RECORDED: "rating_thanks",
    RateResult.CHANGED: "rating_changed",
    RateResult.UNCHANGED: "rating_unchanged",
    RateResult.NOT_YOURS: "rating_not_yours",
    RateResult.NOT_FOUND: "feedback_answer_gone",
}


@router.button("rate")
async def rate(turn: Turn) -> list[Reply]:
    """Helpful / not helpful on an answer; pressing again changes the rating, never adds one."""
    raw_id, _, value = turn.args.partition(":")
    answer_id = parse_id(raw_id)
    if answer_id is None or value not in ("0", "1"):
        return turn.say("button_expired", kind="expired")
    rating = Rating.HELPFUL if value == "1" else Rating.NOT_HELPFUL
    result = await turn.questions.rate(answer_id, turn.citizen.id, rating, now=turn.now)
    notice = turn.t(_RATED[result])
    if result is RateResult.NOT_YOURS:
        # In a group the rater is not the asker: a toast for them, nothing in the chat.
        return [Reply("", notice=notice, kind="rating")]
    if result is RateResult.NOT_FOUND:
        return [Reply(notice, notice=notice, kind="expired")]
    if rating is Rating.NOT_HELPFUL and result is not RateResult.UNCHANGED:
        return _ask_what_was_missing(turn, answer_id, notice)
    if rating is Rating.HELPFUL and _waiting_for(turn, MISSING, answer_id):
        turn.state.clear()
    return [Reply(notice, notice=notice, kind="rating")]


@router.state(MISSING)
async def what_was_missing(turn: Turn) -> list[Reply]:
    """The one free-text reply to "what was missing?", kept with the answer and its entry."""
    if _expired(turn):
        turn.state.clear()
        return await ask.ask(turn)
    answer_id = parse_id(str(turn.state.data.get("answer_id", "")))
    text = turn.incoming.text or ""
    if not has_content(text):
        return [Reply(turn.t("feedback_empty"), buttons=_skip(turn, answer_id), kind="feedback_empty")]
    saved = await FeedbackRepository(turn.session).add(
        turn.citizen.id, FeedbackKind.MISSING, text, language=turn.lang, answer_id=answer_id, now=turn.now
    )
    turn.state.clear()
    return _thanks(turn, "feedback_missing_thanks", saved)


@router.command("feedback")
async def feedback(turn: Turn) -> list[Reply]:
    """A comment about the service: ``/feedback text`` at once, or the next message."""
    if has_content(turn.args):
        return await _save_comment(turn, FeedbackKind.COMMENT, turn.args)
    turn.state.set(COMMENT, kind=FeedbackKind.COMMENT.value, since=turn.now.isoformat())
    buttons = (
        (Button(turn.t("feedback_btn_complaint"), payload=f"{PAYLOAD}:complaint"),),
        _cancel(turn),
    )
    return turn.say("feedback_prompt", kind="feedback_prompt", buttons=buttons)


@router.state(COMMENT)
async def comment(turn: Turn) -> list[Reply]:
    """The comment or complaint the citizen was asked for."""
    if _expired(turn):
        turn.state.clear()
        return await ask.ask(turn)
    text = turn.incoming.text or ""
    if not has_content(text):
        return [Reply(turn.t("feedback_empty"), buttons=(_cancel(turn),), kind="feedback_empty")]
    kind = FeedbackKind.COMPLAINT if turn.state.data.get("kind") == "complaint" else FeedbackKind.COMMENT
    return await _save_comment(turn, kind, text)


@router.button(PAYLOAD)
async def feedback_button(turn: Turn) -> list[Reply]:
    """The buttons of the feedback prompts: complaint, cancel, skip."""
    action, _, rest = turn.args.partition(":")
    if action == "complaint":
        turn.state.set(COMMENT, kind=FeedbackKind.COMPLAINT.value, since=turn.now.isoformat())
        return turn.say("feedback_complaint_prompt", kind="feedback_prompt", buttons=(_cancel(turn),))
    if action == "cancel":
        if turn.state.state == COMMENT:
            turn.state.clear()
        return _acknowledged(turn, "feedback_cancelled")
    if action == "skip":
        if _waiting_for(turn, MISSING, parse_id(rest)):
            turn.state.clear()
        return _acknowledged(turn, "feedback_skipped")
    return turn.say("button_expired", kind="expired")


def has_content(text: str) -> bool:
    """Whether text says anything: a letter, digit or symbol (emoji count), not just punctuation or spaces."""
    return any(unicodedata.category(ch)[0] in "LNS" for ch in text)


def _ask_what_was_missing(turn: Turn, answer_id: int, notice: str) -> list[Reply]:
    turn.state.set(MISSING, answer_id=answer_id, since=turn.now.isoformat())
    buttons = (
        *_skip(turn, answer_id),
        (Button(turn.t("btn_talk_department"), payload=f"{ask.DEPARTMENT_PAYLOAD}:a{answer_id}"),),
    )
    return [Reply(turn.t("feedback_what_missing"), buttons=buttons, notice=notice, kind="feedback_missing")]


async def _save_comment(turn: Turn, kind: FeedbackKind, text: str) -> list[Reply]:
    saved = await FeedbackRepository(turn.session).add(
        turn.citizen.id, kind, text, language=turn.lang, now=turn.now
    )
    turn.state.clear()
    key = "feedback_complaint_thanks" if kind is FeedbackKind.COMPLAINT else "feedback_comment_thanks"
    return _thanks(turn, key, saved)


def _thanks(turn: Turn, key: str, saved: SavedFeedback) -> list[Reply]:
    lines = [turn.t(key)]
    if saved.cut:
        lines.append(turn.t("feedback_cut", limit=MAX_FEEDBACK_CHARS))
    return [Reply("\n".join(lines), kind="feedback_saved")]


def _acknowledged(turn: Turn, key: str) -> list[Reply]:
    text = turn.t(key)
    return [Reply(text, notice=text, kind="feedback_done")]


def _skip(turn: Turn, answer_id: int | None) -> tuple[tuple[Button, ...], ...]:
    payload = f"{PAYLOAD}:skip:{answer_id}" if answer_id is not None else f"{PAYLOAD}:skip"
    return ((Button(turn.t("feedback_btn_skip"), payload=payload),),)


def _cancel(turn: Turn) -> tuple[Button, ...]:
    return (Button(turn.t("feedback_btn_cancel"), payload=f"{PAYLOAD}:cancel"),)


def _waiting_for(turn: Turn, state: str, answer_id: int | None) -> bool:
    return turn.state.state == state and parse_id(str(turn.state.data.get("answer_id", ""))) == answer_id


def _expired(turn: Turn) -> bool:
    """Whether the prompt the citizen is answering was sent more than :data:`WAIT` ago (or is unreadable)."""
    try:
        since = datetime.fromisoformat(str(turn.state.data.get("since", "")))
    except ValueError:
        return True
    if since.tzinfo is None:
        return True
    return turn.now - since > WAIT


