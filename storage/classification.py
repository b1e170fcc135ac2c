"""The declared class of every citizen-related field, and what a department's clearance lets it receive."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from storage.numbers import whole_number


class DataClass(enum.IntEnum):
    """How closely a field must be held; a higher class needs a higher clearance."""

    PUBLIC = 0
    """Anyone may see it (a topic, a language)."""
    INTERNAL = 1
    """Within the government body, no person behind it (a ticket, a pseudonymous citizen reference)."""
    PERSONAL = 2
    """Identifies or reaches a person (name, chat id, phone…); needs clearance and the citizen's consent."""
    SENSITIVE = 3
    """Harms a person if it leaks (national ID number, location…); needs the highest clearance and consent."""

    @property
    def label(self) -> str:
        return self.name.lower()


class Field(enum.StrEnum):
    """Citizen-related fields a payload, export or log may carry."""

    TOPIC = "topic"
    LANGUAGE = "language"
    CITIZEN_REF = "citizen_ref"
    TICKET = "ticket"
    CHANNEL = "channel"
    CHAT_ID = "chat_id"
    USERNAME = "username"
    NAME = "name"
    PHONE = "phone"
    EMAIL = "email"
    FREE_TEXT = "free_text"
    CONTACT = "contact"
    NATIONAL_ID = "national_id"
    BANK_CARD = "bank_card"
    LOCATION = "location"


FIELD_CLASSES: Mapping[str, DataClass] = MappingProxyType(
    {
        Field.TOPIC: DataClass.PUBLIC,
        Field.LANGUAGE: DataClass.PUBLIC,
        Field.CITIZEN_REF: DataClass.INTERNAL,
        Field.TICKET: DataClass.INTERNAL,
        Field.CHANNEL: DataClass.INTERNAL,
        Field.CHAT_ID: DataClass.PERSONAL,
        Field.USERNAME: DataClass.PERSONAL,
        Field.NAME: DataClass.PERSONAL,
        Field.PHONE: DataClass.PERSONAL,
        Field.EMAIL: DataClass.PERSONAL,
        Field.FREE_TEXT: DataClass.PERSONAL,
        Field.CONTACT: DataClass.PERSONAL,
        Field.NATIONAL_ID: DataClass.SENSITIVE,
        Field.BANK_CARD: DataClass.SENSITIVE,
        Field.LOCATION: DataClass.SENSITIVE,
    }
)
"""The one declared table of field classes (documented in the README); payloads use these names."""

DEFAULT_CLEARANCE = DataClass.PERSONAL
"""What a department may receive unless staff set otherwise: personal data with consent, nothing sensitive."""
LOWEST_CLEARANCE = DataClass.INTERNAL
"""Departments always see what a case cannot work without (its ticket); clearances below are raised to it."""


def class_of(field: str, classes: Mapping[str, DataClass] = FIELD_CLASSES) -> DataClass:
    """The class of a field; a field nobody declared is treated as sensitive, so it fails closed."""
    return classes.get(field, DataClass.SENSITIVE)


def needs_consent(data_class: DataClass) -> bool:
    """Whether sharing a field of this class needs the citizen's consent."""
    return data_class >= DataClass.PERSONAL


def cleared(data_class: DataClass, clearance: DataClass) -> bool:
    """Whether a department with ``clearance`` may receive a field of ``data_class``."""
    return data_class <= clearance


def parse_class(value: object, default: DataClass = DEFAULT_CLEARANCE) -> DataClass:
    """A class from its name (``personal``) or number; anything else gives ``default``."""
    if isinstance(value, DataClass):
        return value
    if isinstance(value, str):
        member = DataClass.__members__.get(value.strip().upper())
        if member is not None:
            return member
        value = whole_number(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and value in set(DataClass):
        return DataClass(value)
    return default
