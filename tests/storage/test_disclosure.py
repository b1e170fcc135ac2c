"""Field classes, clearance and consent decide what a department receives; payloads name what was withheld."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage.classification import FIELD_CLASSES, DataClass, Field, class_of, parse_class
from storage.disclosure import Withheld, disclose, govern_case, govern_event

SECRET_TEXT = "my neighbour's dog barks all night"
CONTACT = "Zhang San 13812345678"


def case_document() -> dict[str, Any]:
    return {
        "case": {
            "ticket": "TX-2026-000001",
            "language": "en",
            "channel": "telegram",
            "description": SECRET_TEXT,
        },
        "excerpt": [
            {"direction": "in", "text": SECRET_TEXT, "at": "2026-11-23T09:30:00Z"},
            {"direction": "out", "text": "Sorry, I don't know.", "at": "2026-11-23T09:30:01Z"},
        ],
        "citizen": {"language": "en", "channel": "telegram", "contact": CONTACT, "contact_consent_at": "…"},
        "update": {"text": SECRET_TEXT + " again", "at": "2026-11-23T10:00:00Z"},
        "history": [
            {"kind": "information", "actor": "citizen", "text": SECRET_TEXT},
            {"kind": "reply", "actor": "TAX", "text": "We are on it."},
        ],
    }


def test_every_listed_field_of_the_issue_has_a_class() -> None:
    for name in ("chat_id", "name", "username", "phone", "email", "national_id", "free_text", "location"):
        assert name in FIELD_CLASSES
    assert FIELD_CLASSES[Field.NATIONAL_ID] is DataClass.SENSITIVE
    assert FIELD_CLASSES[Field.PHONE] is DataClass.PERSONAL
    assert FIELD_CLASSES[Field.TICKET] is DataClass.INTERNAL


def test_an_undeclared_field_is_treated_as_sensitive() -> None:
    assert class_of("blood_type") is DataClass.SENSITIVE


@pytest.mark.parametrize(
    ("given_", "expected"),
    [("personal", DataClass.PERSONAL), (" SENSITIVE ", DataClass.SENSITIVE), ("1", DataClass.INTERNAL),
     ("top-secret", DataClass.PERSONAL), (None, DataClass.PERSONAL), (True, DataClass.PERSONAL)],
)  # fmt: skip
def test_clearances_are_parsed_with_a_safe_default(given_: object, expected: DataClass) -> None:
    assert parse_class(given_) is expected


@given(
    clearance=st.sampled_from(list(DataClass)),
    consents=st.dictionaries(st.sampled_from(list(FIELD_CLASSES)), st.booleans()),
    names=st.sets(st.sampled_from([*FIELD_CLASSES, "undeclared"])),
)
def test_a_field_goes_out_only_when_clearance_and_consent_both_allow(
    clearance: DataClass, consents: dict[str, bool], names: set[str]
) -> None:
    fields = {name: f"value of {name}" for name in names}
    included, withheld = disclose(fields, FIELD_CLASSES, clearance, consents)
    assert set(included) | set(withheld) == names
    assert not set(included) & set(withheld)
    for name in included:
        data_class = class_of(name)
        assert data_class <= clearance
        assert data_class < DataClass.PERSONAL or consents.get(name) is True
    for name, reason in withheld.items():
        if reason is Withheld.CLEARANCE:
            assert class_of(name) > clearance
        elif reason is Withheld.REFUSED:
            assert consents[name] is False
        else:
            assert name not in consents


def test_free_text_that_goes_out_has_uncleared_personal_data_masked() -> None:
    fields = {"free_text": "call 13812345678, ID 110101199003074258"}
    included, _ = disclose(fields, FIELD_CLASSES, DataClass.PERSONAL, {"free_text": True, "phone": True})
    assert included["free_text"] == "call 13812345678, ID 110****4258"
    included, _ = disclose(fields, FIELD_CLASSES, DataClass.PERSONAL, {"free_text": True})
    assert included["free_text"] == "call 138****5678, ID 110****4258"


def test_with_consent_and_clearance_the_case_goes_out_whole() -> None:
    governed = govern_case(
        case_document(), clearance=DataClass.PERSONAL, consents={"free_text": True, "contact": True}
    )
    doc = governed.document
    assert doc["case"]["description"] == SECRET_TEXT
    assert doc["citizen"]["contact"] == CONTACT
    assert doc["privacy"] == {"clearance": "personal", "withheld": []}
    assert set(governed.disclosed) == {"ticket", "language", "channel", "free_text", "contact"}


def test_without_consent_for_contact_it_is_left_out_and_named() -> None:
    governed = govern_case(case_document(), clearance=DataClass.PERSONAL, consents={"free_text": True})
    assert "contact" not in governed.document["citizen"]
    assert "contact_consent_at" not in governed.document["citizen"]
    assert governed.document["privacy"]["withheld"] == [{"field": "contact", "reason": "consent"}]
    assert "13812345678" not in json.dumps(governed.document)


def test_below_personal_clearance_no_citizen_text_goes_out() -> None:
    governed = govern_case(
        case_document(), clearance=DataClass.INTERNAL, consents={"free_text": True, "contact": True}
    )
    text = json.dumps(governed.document, ensure_ascii=False)
    assert SECRET_TEXT not in text
    assert CONTACT not in text
    assert governed.document["excerpt"] == []
    assert governed.document["history"][1]["text"] == "We are on it."
    assert governed.withheld == {"free_text": Withheld.CLEARANCE, "contact": Withheld.CLEARANCE}
    assert governed.document["case"]["ticket"] == "TX-2026-000001"


def test_a_public_clearance_still_lets_the_ticket_through() -> None:
    governed = govern_case(case_document(), clearance=DataClass.PUBLIC, consents={})
    assert governed.document["case"]["ticket"] == "TX-2026-000001"
    assert governed.document["privacy"]["clearance"] == "internal"


def test_an_erased_citizen_sends_nothing_personal_whatever_the_consent() -> None:
    governed = govern_case(
        case_document(),
        clearance=DataClass.SENSITIVE,
        consents={"free_text": True, "contact": True},
        erased=True,
    )
    text = json.dumps(governed.document, ensure_ascii=False)
    assert SECRET_TEXT not in text
    assert CONTACT not in text
    assert governed.withheld == {"free_text": Withheld.ERASED, "contact": Withheld.ERASED}


def test_an_event_payload_keeps_its_envelope() -> None:
    payload: dict[str, Any] = {
        "type": "case.created",
        "version": 1,
        "id": "msg_1",
        "timestamp": "t",
        "data": case_document(),
    }
    governed = govern_event(payload, clearance=DataClass.PERSONAL, consents={})
    assert governed.document["type"] == "case.created"
    assert governed.document["id"] == "msg_1"
    assert governed.document["data"]["privacy"]["withheld"] == [
        {"field": "contact", "reason": "consent"},
        {"field": "free_text", "reason": "consent"},
    ]
    assert payload["data"]["case"]["description"] == SECRET_TEXT  # the input is not changed


JSON = st.recursive(
    st.none() | st.text() | st.integers(),
    lambda children: st.one_of(st.lists(children), st.dictionaries(st.text(), children)),
)
PARTS = ("case", "excerpt", "citizen", "update", "history", "privacy")


@given(st.one_of(JSON, st.fixed_dictionaries({}, optional=dict.fromkeys(PARTS, JSON))))
def test_malformed_documents_never_crash(data: Any) -> None:
    governed = govern_event({"data": data}, clearance=DataClass.PERSONAL, consents={})
    assert "privacy" in governed.document["data"]
