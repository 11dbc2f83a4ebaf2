from functools import cache
from typing import Any, Literal

from django.db import connection
from django.db.models import Model
from django_otp import user_has_device
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice
from rest_framework.authtoken.models import Token

from apps.accounts.models import User
from apps.core.db import server_cursor


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


def _columns(model: type[Model], alias: str) -> str:
    return ", ".join(f'{alias}."{f.column}"' for f in model._meta.concrete_fields)


# Every API call looks its token up. One statement, prepared once per connection
# (apps.core.db.server_cursor), reads the token and its user without the ORM's SQL
# compilation; the columns are named so that its result keeps its shape while a
# migration adds one under running processes.
_TOKEN_WITH_USER_SQL = (
    f"SELECT {_columns(Token, 't')}, {_columns(User, 'u')} "  # noqa: S608 - model columns
    "FROM authtoken_token t JOIN accounts_user u ON u.id = t.user_id "
    "WHERE t.key = %s"
)


@cache
def _row_shape(model: type[Model]) -> tuple[list[str], list[tuple[Any, list]]]:
    """The attribute names of `model`'s concrete fields, and each field with the
    converters a queryset would apply to its column (the backend's, then the
    field's own): the same for every row, so worked out once per process."""
    fields = model._meta.concrete_fields
    return [f.attname for f in fields], [
        (
            f,
            connection.ops.get_db_converters(f.get_col(model._meta.db_table))
            + f.get_db_converters(connection),
        )
        for f in fields
    ]


def _from_row(model: type[Model], values: list[Any]) -> Any:
    """A model instance from its concrete columns' values, converted as a queryset
    converts them."""
    attnames, converters = _row_shape(model)
    converted = []
    for (field, field_converters), value in zip(converters, values, strict=True):
        for convert in field_converters:
            value = convert(value, field, connection)
        converted.append(value)
    return model.from_db(connection.alias, attnames, converted)


def token_get_with_user(*, key: str) -> Token | None:
    """The API token `key`, its user loaded with it, or None if there is none."""
    if connection.vendor != "postgresql":
        return Token.objects.select_related("user").filter(key=key).first()
    if "\x00" in key:  # PostgreSQL text cannot hold it: no token can match
        return None
    with server_cursor() as cursor:
        cursor.execute(_TOKEN_WITH_USER_SQL, [key], prepare=True)
        row = cursor.fetchone()
    if row is None:
        return None
    split = len(Token._meta.concrete_fields)
    token = _from_row(Token, list(row[:split]))
    token.user = _from_row(User, list(row[split:]))
    return token


def user_needs_second_factor(*, user: User) -> Literal["setup", "verify"] | None:
    """What a signed-in user must still do about their second factor, if anything.

    Staff must have a confirmed device and use it at each sign-in; a customer who chose
    to set one up uses it too.
    """
    # `is_verified` is set by django-otp's middleware; without it nothing was verified.
    if getattr(user, "is_verified", lambda: False)():
        return None
    if user_has_device(user, confirmed=True):
        return "verify"
    return "setup" if user.is_staff_role else None


def otp_current_code(*, user: User) -> str | None:
    """The code the user's newest authenticator shows now (for development demos)."""
    # The newest: while a new phone is being set up, that is the one to show.
    device = TOTPDevice.objects.filter(user=user).order_by("-id").first()
    if device is None:
        return None
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    return f"{totp.token():0{device.digits}d}"
