"""Personal data in free text is found and masked; ordinary numbers are left alone."""

from __future__ import annotations

import re
import sys
from datetime import date

import phonenumbers
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType as PhoneType

from storage.masking import (
    Kind,
    find,
    is_resident_id,
    luhn_valid,
    mask,
    masked,
    may_hold_personal_data,
    resident_id_check,
)
from storage.masking import _shadow as shadow

FILLER = st.text(
    alphabet=st.sampled_from(list("办理身份证的问题谢谢您好 ,.;!?，。：、()abcXYZ")),
    max_size=12,
)
SEPARATOR = st.sampled_from([" ", "，", "：", "。", "(", ")", "\n", " - ", "号码"])


@st.composite
def resident_ids(draw: st.DrawFn) -> str:
    region = draw(st.sampled_from(["110101", "310104", "440305", "510107"]))
    born = draw(st.dates(min_value=date(1920, 1, 1), max_value=date(2100, 12, 31)))
    serial = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    first17 = f"{region}{born:%Y%m%d}{serial}"
    return first17 + resident_id_check(first17)


@st.composite
def card_numbers(draw: st.DrawFn) -> str:
    body = draw(st.from_regex(r"6[0-9]{12,17}", fullmatch=True))
    check = next(d for d in "0123456789" if luhn_valid(body + d))
    number = body + check
    if draw(st.booleans()) and len(number) == 16:
        number = " ".join(number[i : i + 4] for i in range(0, 16, 4))
    return number


@st.composite
def cn_mobiles(draw: st.DrawFn) -> tuple[str, str]:
    prefix = draw(st.sampled_from(["130", "135", "138", "150", "159", "166", "177", "186", "189", "199"]))
    digits = prefix + draw(st.from_regex(r"[0-9]{8}", fullmatch=True))
    number = phonenumbers.parse(digits, "CN")
    assume(phonenumbers.is_valid_number(number))
    style = draw(st.sampled_from(["plain", "spaced", "dashed", "e164", "international"]))
    shown = {
        "plain": digits,
        "spaced": f"{digits[:3]} {digits[3:7]} {digits[7:]}",
        "dashed": f"{digits[:3]}-{digits[3:7]}-{digits[7:]}",
        "e164": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164),
        "international": phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL),
    }[style]
    return shown, digits


@st.composite
def other_phones(draw: st.DrawFn) -> tuple[str, str]:
    """Landlines in China and numbers abroad, written as people write them."""
    region = draw(st.sampled_from(["CN", "GB", "DE", "FR", "JP", "HK", "SG", "AU"]))
    example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.FIXED_LINE)
    assert example is not None
    national = str(example.national_number)
    tail = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}", None)
    assume(phonenumbers.is_valid_number(number))
    fmt = phonenumbers.PhoneNumberFormat.INTERNATIONAL
    if region == "CN" and draw(st.booleans()):
        fmt = phonenumbers.PhoneNumberFormat.NATIONAL
    return phonenumbers.format_number(number, fmt), str(number.national_number)


@st.composite
def dashed_phones(draw: st.DrawFn) -> tuple[str, str]:
    """Numbers with their country code written with dashes (``+86-10-6552-9988``), as on letterheads."""
    region = draw(st.sampled_from(["CN", "DE", "JP", "AU", "GB", "FR"]))
    kind = draw(st.sampled_from([PhoneType.FIXED_LINE, PhoneType.MOBILE]))
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    national = str(example.national_number)
    tail = draw(st.from_regex(r"[0-9]{3}", fullmatch=True))
    number = phonenumbers.parse(f"+{example.country_code}{national[:-3]}{tail}", None)
    assume(phonenumbers.is_valid_number(number))
    shown = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.RFC3966).removeprefix("tel:")
    return draw(st.sampled_from([shown, "00" + shown[1:]])), str(number.national_number)


@st.composite
def emails(draw: st.DrawFn) -> str:
    local = draw(st.from_regex(r"[a-z][a-z0-9._+-]{0,10}", fullmatch=True))
    domain = draw(st.from_regex(r"[a-z]{2,8}\.(com|cn|gov\.cn|org)", fullmatch=True))
    return f"{local}@{domain}"


DATES = st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31))
ORDINARY = st.one_of(
    DATES.map(lambda d: f"{d:%Y-%m-%d}"),
    DATES.map(lambda d: f"{d:%Y/%m/%d}"),
    DATES.map(lambda d: f"{d.year}年{d.month}月{d.day}日"),
    DATES.map(lambda d: f"{d:%d.%m.%Y}"),
    st.times().map(lambda t: f"{t:%H:%M}"),
    st.from_regex(r"TR-20[0-9]{2}-[0-9]{6}", fullmatch=True),
    st.integers(0, 999_999).map(lambda n: f"{n / 100:,.2f}"),
    st.integers(1, 9999).map(str),
    st.just("12345"),
)


def digits_of(text: str) -> str:
    return re.sub(r"[^0-9]", "", text)


@given(FILLER, SEPARATOR, resident_ids(), SEPARATOR, FILLER)
def test_no_valid_resident_id_survives_masking(
    before: str, left: str, number: str, right: str, after: str
) -> None:
    result = mask(before + left + number + right + after)
    assert number[:17] not in digits_of(result)
    assert not [f for f in find(result) if f.kind is Kind.NATIONAL_ID]


@given(FILLER, SEPARATOR, resident_ids(), st.sampled_from([" ", "-"]), SEPARATOR, FILLER)
def test_a_resident_id_written_in_its_three_parts_is_masked(
    before: str, left: str, number: str, between: str, right: str, after: str
) -> None:
    written = between.join((number[:6], number[6:14], number[14:]))
    result = mask(before + left + written + right + after)
    assert number[6:14] not in digits_of(result)
    assert [f.kind for f in find(before + left + written + right + after)].count(Kind.NATIONAL_ID) == 1


@given(FILLER, SEPARATOR, resident_ids(), st.sampled_from([" ", "-"]), SEPARATOR, FILLER)
def test_a_resident_id_written_in_four_groups_is_masked(
    before: str, left: str, number: str, between: str, right: str, after: str
) -> None:
    # 110101 1990 0307 4258: the birth date split into year and month-day, as people read it out.
    written = between.join((number[:6], number[6:10], number[10:14], number[14:]))
    result = mask(before + left + written + right + after)
    assert number[6:14] not in digits_of(result)
    assert [f.kind for f in find(before + left + written + right + after)].count(Kind.NATIONAL_ID) == 1


@given(
    FILLER,
    SEPARATOR,
    resident_ids(),
    st.sampled_from([(18,), (6, 8, 4), (6, 4, 4, 4)]),
    st.sampled_from([" ", "-"]),
    st.from_regex(r"[A-Za-z]{1,8}", fullmatch=True),
)
def test_a_resident_id_followed_straight_by_latin_letters_is_masked(
    before: str, left: str, number: str, groups: tuple[int, ...], between: str, letters: str
) -> None:
    parts, start = [], 0
    for size in groups:
        parts.append(number[start : start + size])
        start += size
    result = mask(before + left + between.join(parts) + letters)
    assert number[6:14] not in digits_of(result)
    assert result.endswith(letters)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("身份证 110101 1990 0307 4258 谢谢", "身份证 110****4258 谢谢"),
        ("身份证110101-1990-0307-4258。", "身份证110****4258。"),
        ("ID 110101199003074258please call", "ID 110****4258please call"),
        ("ID 110101 19900307 4258abc", "ID 110****4258abc"),
        # Four digit groups that are no ID number (no valid birth date and check) are left alone.
        ("codes 123456 2026 1123 0930 and 2026-11-23", "codes 123456 2026 1123 0930 and 2026-11-23"),
    ],
)
def test_resident_ids_in_four_groups_or_before_letters_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected
    assert mask(expected) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("联系 张三@example.com 。", "联系 张***@example.com 。"),
        ("邮箱：li@例子.中国，谢谢", "邮箱：l***@例子.中国，谢谢"),
        ("write to josé.garcía@correo.es today", "write to j***@correo.es today"),
        # An ASCII address keeps the words before it; with a Chinese name, there is no telling where it
        # starts: all of it is masked.
        ("我的邮箱是zhang@example.com谢谢", "我的邮箱是z***@example.com谢谢"),
        ("我的邮箱是张三@example.com", "我***@example.com"),
    ],
)
def test_addresses_with_letters_of_any_script_are_masked(text: str, expected: str) -> None:
    assert mask(text) == expected
    assert mask(expected) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("邮箱123456@qq。com", "邮***@qq。com"),
        ("write to zhang@example。gov。cn today", "write to z***@example。gov。cn today"),
        ("邮箱：li@例子｡cn，谢谢", "邮箱：l***@例子｡cn，谢谢"),
        ("mail wang＠example。cn now", "mail w***@example。cn now"),
        ("邮箱123456@qq。com。谢谢", "邮***@qq。com。谢谢"),
        # A mention ending a sentence is not an address: the words before it stay.
        ("今天我在群里@客服。没人回", "今天我在群里@客服。没人回"),
    ],
)
def test_addresses_with_ideographic_full_stops_for_dots_are_masked(text: str, expected: str) -> None:
    # A Chinese input method types "。" for "."; IDNA reads "。" and "｡" as the dot between a domain's labels.
    assert mask(text) == expected
    assert mask(expected) == expected


@given(FILLER, SEPARATOR, cn_mobiles(), SEPARATOR, FILLER)
def test_no_valid_mobile_number_survives_masking(
    before: str, left: str, phone: tuple[str, str], right: str, after: str
) -> None:
    shown, digits = phone
    result = mask(before + left + shown + right + after)
    assert digits not in digits_of(result)
    assert not phonenumbers.PhoneNumberMatcher(result, "CN").has_next()


@given(FILLER, cn_mobiles(), FILLER)
def test_mobile_numbers_glued_to_words_are_masked_too(
    before: str, phone: tuple[str, str], after: str
) -> None:
    _, digits = phone
    assert digits not in digits_of(mask(f"{before}tel{digits}{after}"))


@given(FILLER, SEPARATOR, other_phones(), SEPARATOR, FILLER)
def test_landlines_and_foreign_numbers_are_masked(
    before: str, left: str, phone: tuple[str, str], right: str, after: str
) -> None:
    shown, national = phone
    assert national not in digits_of(mask(before + left + shown + right + after))


@given(FILLER, SEPARATOR, dashed_phones(), SEPARATOR, FILLER)
def test_phone_numbers_written_with_dashes_are_not_taken_for_dates(
    before: str, sep1: str, phone: tuple[str, str], sep2: str, after: str
) -> None:
    shown, national = phone
    assert national not in digits_of(mask(f"{before}{sep1}{shown}{sep2}{after}"))


@given(FILLER, SEPARATOR, card_numbers(), SEPARATOR, FILLER)
def test_no_luhn_valid_card_number_survives_masking(
    before: str, left: str, card: str, right: str, after: str
) -> None:
    result = mask(before + left + card + right + after)
    assert digits_of(card) not in digits_of(result)


@given(FILLER, emails(), FILLER)
def test_no_email_address_survives_masking(before: str, address: str, after: str) -> None:
    result = mask(f"{before} {address} {after}")
    assert address not in result
    assert "@" + address.split("@")[1] in result


@given(st.lists(st.tuples(ORDINARY, SEPARATOR, FILLER), max_size=5))
def test_dates_tickets_amounts_and_hotlines_are_left_alone(pieces: list[tuple[str, str, str]]) -> None:
    text = "".join(number + sep + " " + words + " " for number, sep, words in pieces)
    assert mask(text) == text


@given(
    st.lists(
        st.one_of(
            resident_ids(), card_numbers(), emails(), cn_mobiles().map(lambda p: p[0]), ORDINARY, FILLER
        ),
        max_size=6,
    )
)
def test_masking_is_idempotent(pieces: list[str]) -> None:
    once = mask(" ".join(pieces))
    assert mask(once) == once


@given(st.text(max_size=200))
def test_any_text_masks_without_error_and_keeps_its_length_bounded(text: str) -> None:
    result = mask(text)
    assert len(result) <= len(text) + 20 * max(1, len(find(text)))


@given(st.from_regex(r"[0-9]{17}[0-9X]", fullmatch=True))
def test_random_eighteen_digits_are_masked_only_when_they_are_a_valid_id(digits: str) -> None:
    assume(not luhn_valid(digits))
    assume(not phonenumbers.PhoneNumberMatcher(digits, "CN").has_next())
    result = mask(f"编号 {digits} 。")
    assert (result == f"编号 {digits} 。") is not is_resident_id(digits)


def test_resident_id_needs_a_valid_checksum_and_birth_date() -> None:
    assert is_resident_id("110101199003074258")
    assert not is_resident_id("110101199003074259")  # wrong check digit
    assert not is_resident_id("110101199013074253")  # month 13
    assert is_resident_id("11010119900307" + "123" + resident_id_check("11010119900307123"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call me on 13812345678 please", "call me on 138****5678 please"),
        ("我的手机１３８１２３４５６７８谢谢", "我的手机138****5678谢谢"),
        ("ID 110101199003074258.", "ID 110****4258."),
        ("mail zhang.san@example.gov.cn now", "mail z***@example.gov.cn now"),
        ("card 4111 1111 1111 1111", "card 411****1111"),
        (
            "ticket TR-2026-000123 on 2026-11-23 at 09:30, fee 1,234.50, hotline 12345",
            "ticket TR-2026-000123 on 2026-11-23 at 09:30, fee 1,234.50, hotline 12345",
        ),
    ],
)
def test_examples_are_masked_as_documented(text: str, expected: str) -> None:
    assert mask(text) == expected


@pytest.mark.parametrize("written", ["TEL-021-61234567", "FAX-010-65529988", "TEL-010-6552-9988"])
def test_a_phone_number_after_a_capitalised_label_is_not_taken_for_a_ticket(written: str) -> None:
    assert digits_of(written)[-8:] not in digits_of(mask(f"联系 {written} 。"))
    references = "ticket TX9-2026-1234567, ISO-9001, GB-2312-80"
    assert mask(references) == references


def test_kinds_the_reader_is_cleared_for_are_kept() -> None:
    text = "13812345678 / a@b.cn"
    assert mask(text, keep={"phone"}) == "13812345678 / a***@b.cn"
    assert mask(text, keep={"phone", "email"}) == text


def test_masked_form_of_a_short_number_hides_all_but_two_digits() -> None:
    assert masked("phone", "12345678") == "****78"
    assert masked("phone", "123") == "****"


def test_only_text_with_a_digit_or_an_at_sign_may_hold_personal_data() -> None:
    assert not may_hold_personal_data("/telegram/webhook")
    assert not may_hold_personal_data("社保卡丢了怎么补办？")
    assert may_hold_personal_data("/web?to=me@example.cn")
    assert may_hold_personal_data("/cases/１３８")
    assert may_hold_personal_data("me＠example.cn")  # full-width: masking reads it as "@"


def test_every_character_masking_reads_as_a_digit_or_an_at_sign_makes_text_suspect() -> None:
    # The quick check that lets most text skip the search must never skip what the search would find.
    for code in range(sys.maxunicode + 1):
        character = chr(code)
        if shadow(character) in set("0123456789@"):
            assert may_hold_personal_data(character), hex(code)
