"""Finding and masking personal data in free text: phone numbers, e-mail, resident ID and bank card numbers.

Detection runs on a "shadow" of the text in which full-width digits and letters are replaced by their
ASCII forms one character for one, so positions match the original and ``１３８…`` is caught too.
Ordinary numbers (dates, times, ticket numbers such as ``TR-2026-000123``, amounts, ``12345``) are blanked
out before phone numbers are searched, because libphonenumber takes some of them for landlines.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import date

import phonenumbers

DEFAULT_REGION = "CN"
MAX_PASSES = 4
_region = DEFAULT_REGION


class Kind(enum.StrEnum):
    """A kind of personal data found in free text; the values are field names of the classification."""

    EMAIL = "email"
    NATIONAL_ID = "national_id"
    BANK_CARD = "bank_card"
    PHONE = "phone"


@dataclass(frozen=True)
class Finding:
    """Personal data at ``text[start:end]``."""

    kind: Kind
    start: int
    end: int
    value: str


_EMAIL = re.compile(
    r"(?<![A-Za-z0-9._%+\u00c0-\u024f-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_EMAIL_ANY = re.compile(
    r"(?<![\w.%+-])[\w.%+-]+@[\w-]+(?:[.\u3002\uff61][\w-]+)*"
    r"(?:\.(?:[A-Za-z]{2,}|[^\W\d_]{2,})|[\u3002\uff61][A-Za-z]{2,})"
)
"""Addresses with letters of any script (``张三@example.com``, ``li@例子.中国``). Chinese text runs on without
spaces, so such a local part reaches back to the last space or punctuation: sought only where _EMAIL found
no address at the same ``@``, and more masked than too little. _EMAIL itself does not start after a Latin
letter with a diacritic, so that ``josé.garcía@…`` is one address, not ``a@…``. The dots of the domain may be
ideographic full stops (``qq。com``), as a Chinese input method types them and IDNA reads them; then the
last label is in Latin letters, so that ``@客服。谢谢`` (a mention ending a sentence) is left alone."""
_NATIONAL_ID = re.compile(r"(?<![0-9])[0-9]{17}[0-9Xx](?![0-9])")
_NATIONAL_ID_GROUPED = re.compile(
    r"(?<![0-9])[0-9]{6}([ -])(?:[0-9]{8}|[0-9]{4}\1[0-9]{4})\1[0-9]{3}[0-9Xx](?![0-9])"
)
"""An ID number written in its three parts (``110101 19900307 4258``), as on forms, or with the birth date
split (``110101 1990 0307 4258``), as it is read out. Letters may follow straight on (``…4258abc``), as
digits may not: the check (a real birth date and the MOD 11-2 check character) keeps ordinary numbers out."""
_CARD = re.compile(r"(?<![0-9])(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,3})?)(?![0-9Xx])")
_CN_MOBILE = re.compile(r"(?<![0-9])1[3-9][0-9][ .-]?[0-9]{4}[ .-]?[0-9]{4}(?![0-9])")
"""Caught even when glued to letters (``tel13812345678``), which libphonenumber's matcher skips."""
# A date stands alone, not among more digit groups: +86-10-6552-9988 is a phone number, not 86-10-6552.
_ORDINARY = re.compile(
    r"(?<![0-9+])(?<![0-9][-/.])"
    r"(?:[0-9]{4}[-/.年][0-9]{1,2}[-/.月][0-9]{1,2}日?"  # 2026-11-23, 2026年11月23日
    r"|[0-9]{1,2}[-/.][0-9]{1,2}[-/.][0-9]{4})(?![-/.]?[0-9])"  # 23.11.2026
    r"|[0-9]{1,2}:[0-9]{2}(?::[0-9]{2})?"  # 09:30
    r"|[A-Z][A-Z0-9]{0,7}-[0-9]{4}-[0-9]{6,}"  # TR-2026-000123 (a ticket), not TEL-021-61234567
    r"|[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?"  # 1,234.50
    r"|[0-9]+\.[0-9]{1,2}(?![0-9.])"  # 12.5
)
_DIALLED = re.compile(r"(?:\+|(?<![0-9A-Za-z.,:/+-])\(?0)[0-9][0-9 ().-]{4,22}[0-9]")
"""Numbers written with ``+`` or a trunk ``0`` (``+44 121 234 5000``, ``(010) 6552 9988``): checked once more,
because libphonenumber's matcher gives up on some of them when odd brackets stand nearby."""
_AREA_CODE = re.compile(r"\(\+?[0-9]{1,5}\)")
_MASKED = re.compile(r"[0-9A-Za-z]*\*{3,}[0-9A-Za-z]*")
"""What earlier masking left; it must not read as part of a phone number, so masking stays idempotent."""
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_PRIORITY = {Kind.EMAIL: 0, Kind.NATIONAL_ID: 1, Kind.BANK_CARD: 2, Kind.PHONE: 3}


def use_region(region: str) -> None:
    """Set the region whose national phone formats are recognised (``GOVBOT_PHONE_REGION``), at start-up."""
    global _region
    _region = region.upper() if region.upper() in phonenumbers.SUPPORTED_REGIONS else DEFAULT_REGION


def current_region() -> str:
    return _region


def is_resident_id(value: str) -> bool:
    """A valid 18-digit Chinese resident ID number: a real birth date and the ISO 7064 MOD 11-2 check."""
    if len(value) != 18 or not value[:17].isascii() or not value[:17].isdigit():
        return False
    total = sum(int(digit) * weight for digit, weight in zip(value[:17], _ID_WEIGHTS, strict=True))
    if _ID_CHECK[total % 11] != value[17].upper():
        return False
    return _is_birth_date(value[6:14])


def resident_id_check(first17: str) -> str:
    """The check character that completes 17 digits into a resident ID number."""
    return _ID_CHECK[sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS, strict=True)) % 11]


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check (bank card numbers)."""
    if not digits.isascii() or not digits.isdigit():
        return False
    total = 0
    for position, char in enumerate(reversed(digits)):
        digit = int(char)
        if position % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


_AT_SIGNS = frozenset("@\N{FULLWIDTH COMMERCIAL AT}\N{SMALL COMMERCIAL AT}")
"""The characters the shadow turns into ``@``."""


def may_hold_personal_data(text: str) -> bool:
    """False only for text that masking leaves as it is: every kind found needs a digit (of any script) or
    an at sign, so most citizens' questions and most log lines skip the search."""
    return any(character.isdigit() or character in _AT_SIGNS for character in text)


def find(text: str, region: str | None = None) -> list[Finding]:
    """Every piece of personal data in ``text``, in order, none overlapping."""
    if not may_hold_personal_data(text):
        return []
    shadow = _shadow(text)
    found = [*_emails(shadow), *_resident_ids(shadow), *_cards(shadow)]
    found += _phones(shadow, found, region or _region)
    chosen: list[Finding] = []
    for finding in sorted(found, key=lambda f: (_PRIORITY[f.kind], f.start)):
        if all(finding.end <= other.start or finding.start >= other.end for other in chosen):
            chosen.append(finding)
    chosen.sort(key=lambda f: f.start)
    return [Finding(f.kind, f.start, f.end, text[f.start : f.end]) for f in chosen]


def mask(text: str, *, keep: Collection[str] = (), region: str | None = None) -> str:
    """``text`` with personal data masked, except kinds named in ``keep`` (cleared for the reader)."""
    if not may_hold_personal_data(text):
        return text
    # Masking changes what surrounds a number; another pass catches what that reveals (idempotence).
    for _ in range(MAX_PASSES):
        masked_text = _mask_once(text, keep, region)
        if masked_text == text:
            break
        text = masked_text
    return text


def _mask_once(text: str, keep: Collection[str], region: str | None) -> str:
    if not text:
        return text
    parts: list[str] = []
    position = 0
    for finding in find(text, region):
        if finding.kind in keep:
            continue
        parts += [text[position : finding.start], masked(finding.kind, finding.value)]
        position = finding.end
    parts.append(text[position:])
    return "".join(parts)


def masked(kind: str, value: str) -> str:
    """The masked form of a value: ``138****5678``, ``z***@example.com``."""
    if kind == Kind.EMAIL:
        local, _, domain = _shadow(value).partition("@")
        return f"{local[:1]}***@{domain}"
    digits = "".join(c for c in _shadow(value) if c.isascii() and c.isalnum())
    if len(digits) >= 11:
        return f"{digits[:3]}****{digits[-4:]}"
    return f"****{digits[-2:]}" if len(digits) > 4 else "****"


def _shadow(text: str) -> str:
    return "".join(_ascii_form(char) for char in text)


def _ascii_form(char: str) -> str:
    if char.isascii():
        return char
    form = unicodedata.normalize("NFKC", char)
    return form if len(form) == 1 and form.isascii() else char


def _emails(shadow: str) -> Iterator[Finding]:
    at_signs = set()
    for found in _EMAIL.finditer(shadow):
        at_signs.add(found.start() + found.group().index("@"))
        yield Finding(Kind.EMAIL, found.start(), found.end(), found.group())
    for found in _EMAIL_ANY.finditer(shadow):
        if found.start() + found.group().index("@") not in at_signs:
            yield Finding(Kind.EMAIL, found.start(), found.end(), found.group())


def _resident_ids(shadow: str) -> Iterator[Finding]:
    for pattern in (_NATIONAL_ID, _NATIONAL_ID_GROUPED):
        for found in pattern.finditer(shadow):
            if is_resident_id(re.sub(r"[ -]", "", found.group())):
                yield Finding(Kind.NATIONAL_ID, found.start(), found.end(), found.group())


def _cards(shadow: str) -> Iterator[Finding]:
    for found in _CARD.finditer(shadow):
        digits = re.sub(r"[ -]", "", found.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits) and not is_resident_id(digits):
            yield Finding(Kind.BANK_CARD, found.start(), found.end(), found.group())


def _phones(shadow: str, taken: list[Finding], region: str) -> list[Finding]:
    phones = [Finding(Kind.PHONE, m.start(), m.end(), m.group()) for m in _CN_MOBILE.finditer(shadow)]
    phones = [p for p in phones if _valid_phone(p.value, "CN")]
    # What is already found is blanked: a run of several numbers otherwise hides the others from the matcher.
    found = [(f.start, f.end) for f in [*taken, *phones]]
    blanked = _blank(shadow, found + _ordinary_spans(shadow) + _stray_brackets(shadow))
    for match in phonenumbers.PhoneNumberMatcher(blanked, region, leniency=phonenumbers.Leniency.VALID):
        phones.append(Finding(Kind.PHONE, match.start, match.end, match.raw_string))
    phones += _dialled(blanked, region)
    return phones


def _dialled(blanked: str, region: str) -> Iterator[Finding]:
    for found in _DIALLED.finditer(blanked):
        candidate = found.group()
        # The longest prefix that ends at a digit group and is a valid number (a year may follow a phone).
        ends = [m.end() for m in re.finditer(r"[0-9]+", candidate)]
        for end in reversed(ends):
            if _valid_phone(candidate[:end], region):
                yield Finding(Kind.PHONE, found.start(), found.start() + end, candidate[:end])
                break


def _stray_brackets(shadow: str) -> list[tuple[int, int]]:
    """Brackets that do not hold an area code; libphonenumber rejects a number next to them."""
    kept = {i for m in _AREA_CODE.finditer(shadow) for i in (m.start(), m.end() - 1)}
    return [(i, i + 1) for i, char in enumerate(shadow) if char in "()" and i not in kept]


def _ordinary_spans(shadow: str) -> list[tuple[int, int]]:
    spans = [(m.start(), m.end()) for m in _ORDINARY.finditer(shadow)]
    return spans + [(m.start(), m.end()) for m in _MASKED.finditer(shadow)]


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _valid_phone(value: str, region: str) -> bool:
    try:
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(value, region)))
    except phonenumbers.NumberParseException:
        return False


def _is_birth_date(digits: str) -> bool:
    try:
        born = date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return False
    return 1900 <= born.year <= 2100
