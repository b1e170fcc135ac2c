"""What a browser without the chat's script gets when a request is refused: never raw problem+json.

The script posts JSON and explains a refusal itself. A plain form post (the page without JavaScript) goes
back to the chat with ``?refused=<status>``, where the status line says why in the page's language; a page
that cannot be shown at all (the database is down, too many requests) is a short page with a link back.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web

from bot.web.pages import asked_language, language_tag, render, static_url
from handlers.i18n import t
from storage.numbers import whole_number

REFUSED = "refused"
"""The chat page's query parameter: the status its last form post was refused with."""
REASONS = {403: "web_refused_expired", 413: "web_refused_too_long", 429: "web_refused_too_fast"}
"""Why a form post was refused, in the citizen's words; any other status is ``web_rejected``."""
PAGES = {503: ("web_unavailable_title", "web_unavailable"), 429: ("web_busy_title", "web_busy")}
"""The heading and text of a page that could not be shown; any other status is ``web_failed``."""
PAGE_ROUTES = frozenset({"web.chat", "web.transparency"})
FORMS = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})


def for_browser(request: web.Request, status: int, headers: Mapping[str, str]) -> web.Response | None:
    """A redirect or a page for a refused form post or page load; None for the script's requests."""
    is_form = request.method == "POST" and request.content_type in FORMS
    if is_form and status != 503:  # the chat itself can still be shown: back to it, saying why
        return web.Response(status=303, headers={"Location": f"/?{REFUSED}={status}#status"})
    route = request.match_info.route.name or ""
    if not is_form and not (route in PAGE_ROUTES and request.method in ("GET", "HEAD")):
        return None
    lang = asked_language(request.query, request.headers.get("Accept-Language"))
    heading, text = PAGES.get(status, ("web_failed_title", "web_failed"))
    page = render(
        "refused.html", tag=language_tag(lang), css=static_url("transparency.css"),
        site_name=t(lang, "web_site_name"), title=t(lang, heading), text=t(lang, text),
        back=t(lang, "web_tr_back"),
    )
    response = web.Response(text=page, status=status, content_type="text/html", charset="utf-8")
    response.headers.update({name.replace("_", "-"): value for name, value in headers.items()})
    return response


def reason(query: Mapping[str, str], lang: str) -> str:
    """The status line of a chat page that a refused form post came back to; empty otherwise."""
    status = whole_number(query.get(REFUSED, ""), 400, 599)
    return "" if status is None else str(t(lang, REASONS.get(status, "web_rejected")))
