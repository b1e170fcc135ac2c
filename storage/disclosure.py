"""What a department may receive of a citizen, decided field by field; pure, so every rule is testable alone.

A field goes out only when the department's clearance covers its class and, for personal and sensitive
fields, the citizen consented for that department. Free text that goes out still has phone numbers, e-mail,
ID and card numbers masked unless those fields themselves may go out. Whatever is held back is named in the
payload's ``privacy.withheld``, with the reason: ``clearance``, ``consent`` (not asked or not answered yet),
``refused`` (the citizen said no or withdrew it) or ``erased`` (the citizen erased their data).
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from storage.classification import (
    FIELD_CLASSES,
    LOWEST_CLEARANCE,
    DataClass,
    Field,
    class_of,
    cleared,
    needs_consent,
)
from storage.masking import Kind, mask


class Withheld(enum.StrEnum):
    CLEARANCE = "clearance"
    CONSENT = "consent"
    REFUSED = "refused"
    ERASED = "erased"


@dataclass(frozen=True)
class Governed:
    """A document as it may go to one department, and what went and what did not."""

    document: dict[str, Any]
    disclosed: tuple[str, ...]
    """Citizen fields that went out (for the audit log)."""
    withheld: dict[str, Withheld]


def disclose(
    fields: Mapping[str, Any],
    classes: Mapping[str, DataClass],
    clearance: DataClass,
    consents: Mapping[str, bool],
) -> tuple[dict[str, Any], dict[str, Withheld]]:
    """Split ``fields`` into what may go to a department and what is withheld (with the reason)."""
    included, withheld = _decide(fields, classes, clearance, consents)
    keep = _kept(classes, clearance, consents)
    for name in (Field.FREE_TEXT,):
        if isinstance(included.get(name), str):
            included[name] = mask(included[name], keep=keep)
    return included, withheld


def _decide(
    fields: Mapping[str, Any],
    classes: Mapping[str, DataClass],
    clearance: DataClass,
    consents: Mapping[str, bool],
) -> tuple[dict[str, Any], dict[str, Withheld]]:
    """:func:`disclose` without masking the free text (for callers that mask each text themselves)."""
    included: dict[str, Any] = {}
    withheld: dict[str, Withheld] = {}
    for name, value in fields.items():
        data_class = class_of(name, classes)
        if not cleared(data_class, clearance):
            withheld[name] = Withheld.CLEARANCE
        elif needs_consent(data_class) and consents.get(name) is not True:
            withheld[name] = Withheld.REFUSED if consents.get(name) is False else Withheld.CONSENT
        else:
            included[name] = value
    return included, withheld


def kept_kinds(
    classes: Mapping[str, DataClass], clearance: DataClass, consents: Mapping[str, bool]
) -> set[str]:
    """Kinds of personal data found in free text that need not be masked for this reader."""
    return {
        kind.value
        for kind in Kind
        if cleared(class_of(kind.value, classes), clearance)
        and (not needs_consent(class_of(kind.value, classes)) or consents.get(kind.value) is True)
    }


def _kept(
    classes: Mapping[str, DataClass], clearance: DataClass, consents: Mapping[str, bool]
) -> frozenset[str]:
    """:func:`kept_kinds`, remembered for the default classes: a dispatcher's claim asks it per delivery."""
    if classes is not FIELD_CLASSES:
        return frozenset(kept_kinds(classes, clearance, consents))
    granted = frozenset(kind for kind, given in consents.items() if given is True)
    return _kept_by_default(clearance, granted)


@functools.lru_cache(maxsize=256)
def _kept_by_default(clearance: DataClass, granted: frozenset[str]) -> frozenset[str]:
    return frozenset(kept_kinds(FIELD_CLASSES, clearance, dict.fromkeys(granted, True)))


def govern_case(
    document: Mapping[str, Any],
    *,
    clearance: DataClass,
    consents: Mapping[str, bool],
    erased: bool = False,
    classes: Mapping[str, DataClass] = FIELD_CLASSES,
) -> Governed:
    """A case document (a webhook payload's ``data``, or an API body) cut to what the department may see.

    It knows the places where citizen data sits: ``case.description``, ``excerpt[].text``, ``update.text``,
    ``history[].text`` written by the citizen, and ``citizen.contact``.
    """
    doc = _json_copy(dict(document))
    clearance = max(clearance, LOWEST_CLEARANCE)
    present = _present_fields(doc)
    if erased:
        personal = {name for name in present if needs_consent(class_of(name, classes))}
        withheld = dict.fromkeys(personal, Withheld.ERASED)
        included = {name: value for name, value in present.items() if name not in personal}
    else:
        # Only which fields go matters here; _rewrite_free_text masks each text where it sits.
        included, withheld = _decide(present, classes, clearance, consents)
    withheld |= {name: reason for name, reason in _earlier(doc).items() if name not in present}
    keep = _kept(classes, clearance, consents) if not erased else frozenset()
    _rewrite_free_text(doc, Field.FREE_TEXT in included, keep, erased=erased)
    _rewrite_contact(doc, Field.CONTACT in included)
    doc["privacy"] = {
        "clearance": clearance.label,
        "withheld": [{"field": name, "reason": reason.value} for name, reason in sorted(withheld.items())],
    }
    return Governed(doc, tuple(sorted(included)), withheld)


def govern_event(
    payload: Mapping[str, Any],
    *,
    clearance: DataClass,
    consents: Mapping[str, bool],
    erased: bool = False,
    classes: Mapping[str, DataClass] = FIELD_CLASSES,
) -> Governed:
    """A webhook payload (``{"type", "id", "data": {…}}``) with its ``data`` cut by :func:`govern_case`."""
    event = dict(payload)
    data = event.get("data")
    governed = govern_case(
        data if isinstance(data, Mapping) else {},
        clearance=clearance,
        consents=consents,
        erased=erased,
        classes=classes,
    )
    event["data"] = governed.document
    return Governed(event, governed.disclosed, governed.withheld)


def _present_fields(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The citizen fields a case document carries, with a representative value."""
    fields: dict[str, Any] = {}
    case, citizen = _mapping(doc.get("case")), _mapping(doc.get("citizen"))
    for name, value in ((Field.TICKET, case.get("ticket")), (Field.LANGUAGE, case.get("language"))):
        if value is not None:
            fields[name] = value
    if case.get("channel") is not None or citizen.get("channel") is not None:
        fields[Field.CHANNEL] = case.get("channel") or citizen.get("channel")
    if any(_free_texts(doc)):
        fields[Field.FREE_TEXT] = " ".join(_free_texts(doc))
    if citizen.get("contact"):
        fields[Field.CONTACT] = citizen["contact"]
    return fields


def _free_texts(doc: Mapping[str, Any]) -> list[str]:
    texts: list[str] = []
    case = doc.get("case")
    if isinstance(case, Mapping) and isinstance(case.get("description"), str):
        texts.append(case["description"])
    for item in _items(doc.get("excerpt")):
        if isinstance(item.get("text"), str):
            texts.append(item["text"])
    update = doc.get("update")
    if isinstance(update, Mapping) and isinstance(update.get("text"), str):
        texts.append(update["text"])
    for item in _items(doc.get("history")):
        if item.get("actor") == "citizen" and isinstance(item.get("text"), str):
            texts.append(item["text"])
    return [text for text in texts if text]


def _rewrite_free_text(doc: dict[str, Any], included: bool, keep: frozenset[str], *, erased: bool) -> None:
    def shown(text: Any, withheld: str | None = None) -> Any:
        if not isinstance(text, str):
            return text
        return mask(text, keep=keep) if included else withheld

    # Withheld texts become "" where the schema wants a string, None where it allows null.
    case = doc.get("case")
    if isinstance(case, dict) and "description" in case:
        case["description"] = shown(case["description"], "")
    if isinstance(doc.get("excerpt"), list):
        doc["excerpt"] = [dict(item) | {"text": shown(item.get("text"))} for item in _items(doc["excerpt"])]
        if not included:
            doc["excerpt"] = []
    update = doc.get("update")
    if isinstance(update, dict) and "text" in update:
        update["text"] = shown(update["text"], "")
    # What departments wrote (replies, notes) is theirs to read, but may quote the citizen: it is masked
    # as the reader's clearance says, withheld only once the citizen erased their data (as it is stored).
    def staff(text: Any) -> Any:
        if not isinstance(text, str):
            return text
        return None if erased else mask(text, keep=keep)

    if isinstance(doc.get("history"), list):
        doc["history"] = [
            dict(item) | {"text": (shown if item.get("actor") == "citizen" else staff)(item.get("text"))}
            for item in _items(doc["history"])
        ]
    transfer = doc.get("transfer")
    if isinstance(transfer, dict) and "note" in transfer:
        transfer["note"] = staff(transfer["note"])


def _rewrite_contact(doc: dict[str, Any], included: bool) -> None:
    citizen = doc.get("citizen")
    if isinstance(citizen, dict) and not included:
        citizen.pop("contact", None)
        citizen.pop("contact_consent_at", None)


def _earlier(doc: Mapping[str, Any]) -> dict[str, Withheld]:
    """What a stored document already says was removed from it (an erasure scrubs stored payloads)."""
    earlier: dict[str, Withheld] = {}
    for item in _items(_mapping(doc.get("privacy")).get("withheld")):
        if isinstance(item.get("field"), str) and item.get("reason") in set(Withheld):
            earlier[item["field"]] = Withheld(item["reason"])
    return earlier


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _json_copy(value: Any) -> Any:
    """A deep copy of a JSON document (dicts, lists and immutable scalars); far cheaper than copy.deepcopy."""
    if isinstance(value, dict):
        return {key: _json_copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_json_copy(item) for item in value]
    if isinstance(value, tuple):
        return tuple(_json_copy(item) for item in value)
    return value
