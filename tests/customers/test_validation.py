import pytest

from apps.customers.validation import contains_card_number, luhn_valid


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111111",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "card 5500 0000 0000 0004 exp 12/29",
        "378282246310005",  # Amex, 15 digits
        "4222222222222",  # Visa, 13 digits
        "6011 0009 9013 9424 12",  # card followed by another group
    ],
)
def test_card_numbers_are_found(text):
    assert contains_card_number(text)


@pytest.mark.parametrize(
    "text",
    [
        "4111111111111112",  # fails Luhn
        "order 12345",
        "411111111111",  # 12 digits
        "+6281234567890",
        "2024-01-15",
        "",
    ],
)
def test_other_numbers_are_not_cards(text):
    assert not contains_card_number(text)


def test_luhn():
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")
