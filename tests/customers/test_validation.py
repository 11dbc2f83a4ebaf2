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


@pytest.mark.parametrize(
    ("text", "personal"),
    [
        ("Customer asked for a callback", False),
        ("Known QA account, see ticket 42", False),
        ("Case 2024-113, escalated by the team lead", False),
        ("Called +62 812-3456-7890 back", True),
        ("Her number is 0812 3456 7890", True),
        ("Write to siti@example.com", True),
        ("Card 4111 1111 1111 1111 on file", True),
    ],
)
def test_personal_data_in_free_text(text, personal):
    from apps.customers.validation import contains_personal_data

    assert contains_personal_data(text) is personal
