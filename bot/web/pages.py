"""Server-rendered pages: templates filled with escaped values, and chat entries as HTML or JSON."""

from __future__ import annotations

import hashlib
import html
import json
import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from string import Template
from typing import Any

from bot.web.sanitise import parse, safe_href, to_html, to_json
from handlers.i18n import DEFAULT_LANGUAGE, LANGUAGES, catalogue, t
from storage.web_chat import ChatEntry

WEB = Path(__file__).resolve().parent
TEMPLATES = WEB / "templates"
STATIC = WEB / "static"
MESSAGES_URL = "/api/chat/messages"
LANGUAGE_NAMES = {"en": "English", "zh": "中文"}
LANGUAGE_TAGS = {"en": "en", "zh": "zh-Hans"}
"""Our languages as the markup's ``lang`` says them: the Chinese we write is Simplified, which screen readers
and fonts need to know; messages and payloads keep saying ``zh``."""
ARROW = '<span class="arrow" aria-hidden="true">↗</span>'
"""A link button's mark for the eye that it leads to another site; screen readers would read it as part of
the link's name ("north east arrow"). Links open where they are, so there is no new window to announce."""
_QUALITY = re.compile(r"q=([^;,\s]*)")


class Markup(str):
    """HTML built here from escaped parts; put into a template as it is."""

    __slots__ = ()


def escape(value: object) -> Markup:
    return value if isinstance(value, Markup) else Markup(html.escape(str(value), quote=True))


@cache
def _template(name: str) -> Template:
    return Template((TEMPLATES / name).read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """The template with every value escaped, except Markup."""
    return _template(name).substitute({key: escape(value) for key, value in values.items()})


@cache
def static_url(filename: str) -> str:
    """The file's URL with a hash of its content, so a new version is never taken from a cache."""
    digest = hashlib.sha256((STATIC / filename).read_bytes()).hexdigest()[:12]
    return f"/static/{filename}?v={digest}"


def language_tag(lang: str) -> str:
    """The ``lang`` attribute for one of our languages."""
    return LANGUAGE_TAGS.get(lang, lang)


def ui_strings(lang: str) -> dict[str, str]:
    """The page's own texts in ``lang`` (the ``web_…`` messages), for the script to switch languages."""
    return {key: str(t(lang, key)) for key in catalogue(DEFAULT_LANGUAGE) if key.startswith("web_")}


def asked_language(query: Mapping[str, str], accept_language: str | None) -> str:
    """A page's language: ``?lang=`` if it is one of ours, else the browser's preference, else the default."""
    asked = query.get("lang", "")
    return asked if asked in LANGUAGES else accepted_language(accept_language) or DEFAULT_LANGUAGE


def accepted_language(header: str | None) -> str | None:
    """Our language that an Accept-Language header prefers most, if it names one."""
    best: tuple[float, str] | None = None
    for part in (header or "")[:500].split(","):
        code, _, params = part.strip().partition(";")
        found = _QUALITY.search(params)
        try:
            quality = float(found.group(1)) if found else 1.0
        except ValueError:
            continue
        base = code.strip().lower().split("-", 1)[0]
        if base in LANGUAGES and quality > 0 and (best is None or quality > best[0]):
            best = (quality, base)
    return best[1] if best else None


def entry_json(entry: ChatEntry, *, lang: str) -> dict[str, Any]:
    """An entry for the page's script: text as a tree of allowed elements, never raw HTML.

    ``lang``: the language it is shown in (its label, and the voice a screen reader reads it in).
    """
    nodes = to_json(parse(entry.text)) if entry.role == "bot" else ([entry.text] if entry.text else [])
    document = None
    if entry.document:
        document = {"filename": entry.document.get("filename", ""), "url": document_url(entry.seq)}
    return {
        "seq": entry.seq,
        "role": entry.role,
        "kind": entry.kind,
        "nodes": nodes,
        "buttons": [[_button_json(b) for b in row] for row in entry.buttons],
        "document": document,
        "client_id": entry.client_id,
        "lang": lang,
    }


def document_url(seq: int) -> str:
    return f"/api/chat/documents/{seq}"


def entry_html(entry: ChatEntry, *, lang: str, csrf: str) -> str:
    """An entry as the page shows it on load: the same markup the script builds for new ones."""
    body = to_html(parse(entry.text)) if entry.role == "bot" else html.escape(entry.text)
    if not body and not entry.buttons and not entry.document:
        return ""
    prefix = {"bot": "web_bot", "press": "web_pressed"}.get(entry.role, "web_you")
    role = "bot" if entry.role == "bot" else "citizen"
    # An entry's language is not stored: the page's, which its label is in, is the best guess there is.
    tag = language_tag(lang)
    parts = [f'<div class="msg msg-{role}" id="e{entry.seq}" data-seq="{entry.seq}" lang="{tag}">']
    if body:
        parts.append(
            f'<div class="bubble" dir="auto"><span class="sr-only" data-ui="{prefix}">'
            f"{escape(t(lang, prefix))} </span>{body}</div>"
        )
    if entry.buttons:
        parts.append(_buttons_html(entry, csrf))
    if entry.document:
        name = str(entry.document.get("filename", ""))
        label = Markup(t(lang, "web_download", filename=name))  # t() has escaped the name already
        parts.append(f'<a class="document" href="{document_url(entry.seq)}" download>{label}</a>')
    parts.append("</div>")
    return "".join(parts)


def language_buttons(lang: str, csrf: str) -> Markup:
    """The language switch: buttons that press the dialogue's own ``lang:`` payloads."""
    buttons = "".join(
        f'<button type="submit" name="payload" value="lang:{code}" lang="{language_tag(code)}" class="lang" '
        f'aria-pressed="{"true" if code == lang else "false"}">{escape(LANGUAGE_NAMES[code])}</button>'
        for code in LANGUAGES
    )
    return Markup(
        f'<form class="langs press" method="post" action="{MESSAGES_URL}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">{buttons}</form>'
    )


def strings_attribute(lang: str) -> Markup:
    return escape(json.dumps(ui_strings(lang), ensure_ascii=False))


def _buttons_html(entry: ChatEntry, csrf: str) -> str:
    rows = []
    for row in entry.buttons:
        cells = "".join(_button_html(button) for button in row if isinstance(button, dict))
        rows.append(f'<div class="row">{cells}</div>')
    return (
        f'<form class="buttons press" method="post" action="{MESSAGES_URL}">'
        f'<input type="hidden" name="csrf" value="{escape(csrf)}">'
        f'<input type="hidden" name="reply" value="{entry.seq}">{"".join(rows)}</form>'
    )


def _button_html(button: dict[str, Any]) -> str:
    label = escape(button.get("label", ""))
    url = safe_href(button.get("url"))
    if url is not None:
        return f'<a class="link-button" href="{escape(url)}" rel="noopener noreferrer">{label}{ARROW}</a>'
    if button.get("payload"):
        return f'<button type="submit" name="payload" value="{escape(button["payload"])}">{label}</button>'
    return f'<span class="link-button dead">{label}</span>'


def _button_json(button: Any) -> dict[str, str]:
    if not isinstance(button, dict):
        return {"label": ""}
    label = str(button.get("label", ""))
    url = safe_href(button.get("url"))
    if url is not None:
        return {"label": label, "url": url}
    return {"label": label, "payload": str(button["payload"])} if button.get("payload") else {"label": label}
