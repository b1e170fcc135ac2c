"""The dialogue: one Incoming in, the Replies out, with the conversation kept in the database."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, tzinfo
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import ask, browse, escalation, feedback, privacy, start
from handlers.i18n import DEFAULT_LANGUAGE, language_of, t
from handlers.router import Flow, Router, Turn
from handlers.types import FLOOD, FLOOD_QUIET, Incoming, Reply
from knowledge.normalise import guess_language, visible
from storage import db
from storage.citizens import Citizen, CitizenRepository
from storage.flood import Verdict
from storage.knowledge_sync import LiveKnowledge
from storage.models import utcnow

log = logging.getLogger(__name__)

MAX_TEXT = 4000
"""Longer messages are cut before anything else reads them; the citizen is told."""
FULL_WIDTH_SLASH = "\uff0f"
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def default_routers() -> list[Router]:
    """The features every deployment has."""
    return [start.router, browse.router, ask.router, feedback.router, escalation.router, privacy.router]


class Dialogue:
    """Platform-neutral conversation handling; channels call :meth:`handle` for every event."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        knowledge: LiveKnowledge,
        *,
        routers: Sequence[Router] | None = None,
        extras: dict[str, Any] | None = None,
        clock: Callable[[], datetime] = utcnow,
        flood_limit: int | None = None,
        zone: tzinfo = UTC,
    ) -> None:
        """``flood_limit``: messages a citizen may send a minute; more are refused (once politely).

        ``zone``: the service desk's, in whose calendar citizens read dates and entries come into force.
        """
        self.sessions = sessions
        self.flood_limit = flood_limit
        self.knowledge = knowledge
        self.router = Router()
        self.router.include(*(routers if routers is not None else default_routers()))
        self.extras = extras or {}
        self.clock = clock
        self.zone = zone

    async def handle(self, incoming: Incoming) -> list[Reply]:
        """Every reply for one event; a failure is logged and answered with an apology, never raised."""
        incoming, cut = sanitise(incoming)
        if self._for_another_bot(incoming):
            return []
        try:
            # A restarted database costs the citizen nothing: the turn runs again on a new connection.
            replies = await db.reconnecting(lambda: self._handle(incoming, cut=cut))
        except Exception as exc:
            where = (incoming.channel, _masked(incoming.chat_id))
            if db.out_of_reach(exc):  # an outage, not a bug: one line each, not a traceback each
                log.warning("dialogue: the database is unavailable for a %s event from chat %s (%s)",
                            *where, db.error_reason(exc)[:200])
            else:
                log.exception("dialogue failed on %s event from chat %s", *where)
            return [Reply(t(language_of(incoming.language) or DEFAULT_LANGUAGE, "error"), kind="error")]
        return replies

    def _for_another_bot(self, incoming: Incoming) -> bool:
        """A group command this bot does not have, not addressed to it by name: another bot's to answer.

        Every bot in a group receives a bare ``/command``; telling the group we do not know it would answer
        for the bot it was meant for. ``/command@ourname`` is ours, known or not, and is answered.
        """
        command = incoming.command
        if not incoming.is_group or command is None or command[0] in self.router.commands:
            return False
        return "@" not in (incoming.text or "").split(maxsplit=1)[0]

    async def _handle(self, incoming: Incoming, *, cut: bool) -> list[Reply]:
        """One turn; ``cut``: the text was shortened to MAX_TEXT, which the citizen is told first."""
        now = self.clock()
        async with self.sessions.begin() as session:
            citizens = CitizenRepository(session)
            citizen, state = await citizens.begin_turn(incoming.channel, incoming.user_id, now=now)
            if self.flood_limit is not None:
                verdict = await citizens.count_message(citizen.id, self.flood_limit, now=now)
                if not verdict.allowed:  # nothing else happens: no state change, nothing recorded
                    lang = await self._language(citizens, citizen, incoming)
                    return [Reply(t(lang, "flood"), kind=FLOOD if verdict is Verdict.WARN else FLOOD_QUIET)]
            turn = Turn(
                incoming=incoming,
                session=session,
                citizen=citizen,
                lang=await self._language(citizens, citizen, incoming),
                state=state,
                knowledge=self.knowledge,
                now=now,
                extras=self.extras,
                zone=self.zone,
            )
            flow = self._flow(turn)
            heard = [("in", incoming.text)] if incoming.text and not incoming.payload else []
            if heard and flow not in self.router.blind:
                # Written first, as the flow may read it (a case's excerpt) or erase it (/forget); a flow
                # that reads no messages (a question, /menu) has it go with the replies, one statement.
                await citizens.record_messages(citizen.id, heard, now=now)
                heard = []
            replies = await flow(turn)
            said = [("out", reply.text) for reply in replies if reply.text and not reply.replace]
            await citizens.end_turn(citizen.id, heard + said, turn.state, now=now)
        notes = [Reply(turn.t("too_long"))] if cut else []
        if _captioned(incoming):  # once, with the answer: the citizen knows what was and was not read
            notes.append(Reply(turn.t("attachment_not_read"), kind="attachment"))
        return [*notes, *replies]

    def _flow(self, turn: Turn) -> Flow:
        """The flow for this event (a command abandons whatever was pending)."""
        incoming, router, pending = turn.incoming, self.router, turn.state.state
        # What a citizen has pending (a case being described, a comment) belongs to their private chat:
        # in a group it is neither taken up nor given up.
        private = not incoming.is_group
        if incoming.payload is not None:
            prefix, _, turn.args = incoming.payload.partition(":")
            flow = router.buttons.get(prefix)
            if flow is None:
                log.warning("unknown button payload prefix %r", prefix[:20])
                return _expired
            if pending and private and not router.same_feature(prefix, pending):
                turn.state.clear()  # another feature's button leaves the step, as a command does
            return flow
        if incoming.unsupported and not _captioned(incoming):
            return _saying("text_only", kind="text_only")
        command = incoming.command
        if command is not None:
            name, turn.args = command
            flow = router.commands.get(name)
            if flow is None:
                return _saying("unknown_command", kind="unknown_command", command=name[:32])
            if private:
                turn.state.clear()
            return flow
        if not (incoming.text or "").strip():
            return _saying("empty_text", kind="empty")
        state_flow = router.states.get(pending or "") if private else None
        if state_flow is not None:
            return state_flow
        if not visible(incoming.text or ""):  # only zero-width or direction marks: not a question
            return _saying("empty_text", kind="empty")
        if router.text is None:
            return _saying("unknown_command", kind="unknown_command", command="")
        return router.text

    async def _language(self, citizens: CitizenRepository, citizen: Citizen, incoming: Incoming) -> str:
        """The citizen's choice, else the platform's code, else the script of what they last typed."""
        chosen = citizen.language or language_of(incoming.language)
        if chosen:
            return chosen
        if incoming.text and incoming.command is None:
            return _language_guess(incoming)
        # A button press or a command says nothing of the language: the last words typed do.
        typed = await citizens.last_typed(citizen.id)
        return guess_language(typed) if typed else DEFAULT_LANGUAGE


async def _expired(turn: Turn) -> list[Reply]:
    """A button whose kind this bot does not know (forged, or from an old version)."""
    return [Reply(turn.t("button_expired"), notice=turn.t("button_expired"), kind="expired")]


def _saying(key: str, *, kind: str, **values: Any) -> Flow:
    """A flow that only answers with one catalogue message."""

    async def say(turn: Turn) -> list[Reply]:
        return turn.say(key, kind=kind, **values)

    return say


def sanitise(incoming: Incoming) -> tuple[Incoming, bool]:
    """Text every store and platform accepts: no lone surrogates or control characters, bounded length."""
    text = incoming.text
    if text is None:
        return incoming, False
    text = text.encode("utf-8", "replace").decode("utf-8")
    text = _CONTROL.sub(" ", text).strip()
    if text.startswith(FULL_WIDTH_SLASH):  # what Chinese input methods type for "/"
        text = "/" + text[1:]
    cut = len(text) > MAX_TEXT
    return replace(incoming, text=text[:MAX_TEXT]), cut


def _captioned(incoming: Incoming) -> bool:
    """Whether an attachment we cannot read came with words to answer (a photo's caption)."""
    return incoming.unsupported is not None and visible(incoming.text or "")


def _language_guess(incoming: Incoming) -> str:
    return guess_language(incoming.text) if incoming.text else DEFAULT_LANGUAGE


def _masked(identifier: str) -> str:
    """Enough of a chat id to correlate log lines, not enough to identify the citizen."""
    return f"…{identifier[-3:]}" if len(identifier) > 3 else "…"
