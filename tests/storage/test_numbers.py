import pytest

from storage.numbers import whole_number


@pytest.mark.parametrize(("text", "expected"), [("0", 0), ("7", 7), ("0042", 42), ("99", 99)])
def test_ascii_digits_in_range_are_numbers(text: str, expected: int) -> None:
    assert whole_number(text, 0, 99) == expected


@pytest.mark.parametrize(
    "text", ["", " 7", "7 ", "-1", "+1", "1.0", "²", "١", "１", "7²", "1e3", "100", "9" * 19]
)
def test_anything_else_is_none(text: str) -> None:
    assert whole_number(text, 0, 99) is None
