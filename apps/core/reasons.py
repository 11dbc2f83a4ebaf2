"""The rule for a reason staff give (a reveal, a hold, a refusal, an extension): a
sentence, at least `REASON_MIN_LENGTH` characters once trimmed. Whether it holds the
customer's personal data is the customers app's check (`free_text_check`), which every
service taking a reason runs next."""

from apps.core.errors import DomainError

REASON_MIN_LENGTH = 10


def reason_require(
    text: str | None,
    *,
    field: str,
    message: str = "Give a reason of at least {min} characters.",
    error: type[DomainError] = DomainError,
) -> str:
    """`text` trimmed; raises `error` on `field` with `message` (`{min}` in it is the
    minimum length) when it is shorter than `REASON_MIN_LENGTH`."""
    text = (text or "").strip()
    if len(text) < REASON_MIN_LENGTH:
        raise error(message.replace("{min}", str(REASON_MIN_LENGTH)), field=field)
    return text
