"""Request outcomes Amanah writes in full (no staff note before them) are stored as
msgids, so My data shows them in the reader's language (`request_outcome_text`)."""

from apps.requests import services


def test_the_objection_outcomes_are_stored_as_their_marked_texts():
    purpose = services.RESTRICTION_PURPOSE_OBJECTION
    assert (
        services.OBJECTION_REVIEW_TEXT.format(purpose=purpose)
        == services.OBJECTION_REVIEW_OUTCOME
    )
    assert (
        services.OBJECTION_UPHELD_TEXT.format(purpose=purpose)
        == services.OBJECTION_UPHELD_OUTCOME
    )


def test_a_wide_hold_s_outcome_is_the_marked_text():
    class Hold:
        customer_id = None
        reason = "An investigation naming someone else"
        pk = 1

    outcome = services._held_outcome(Hold(), customer=type("C", (), {"pk": 7})())
    assert outcome == services.HELD_OUTCOME
    assert services.HELD_RESTRICTED in outcome
    assert "investigation" not in outcome
