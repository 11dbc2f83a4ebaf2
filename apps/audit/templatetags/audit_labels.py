"""`{{ event|audit_target }}`, `{{ event|audit_actor }}`, `{{ event|audit_role }}` and
`{{ event|audit_details }}`: an audit event as people read it."""

from django import template

from apps.accounts.models import Role
from apps.audit.selectors import audit_target_label

register = template.Library()

# A customer's sign-in account is named after their record ("c-<customer id>").
CUSTOMER_USERNAME_PREFIX = "c-"


@register.filter
def audit_target(event) -> str:
    return audit_target_label(target_type=event.target_type, target_id=event.target_id)


@register.filter
def audit_actor(event) -> str:
    """Who acted: a staff member's username; a customer as their target reads
    ("Customer 0bb7c3fd…"), never their account's long name; "system" without one."""
    if event.actor is None:
        return "system"
    username = event.actor.username
    if event.actor_role == Role.CUSTOMER and username.startswith(
        CUSTOMER_USERNAME_PREFIX
    ):
        return audit_target_label(
            target_type="customers.customer",
            target_id=username.removeprefix(CUSTOMER_USERNAME_PREFIX),
        )
    return username


@register.filter
def audit_role(event) -> str:
    """The actor's role by its label ("Support agent"), an unknown code as it is."""
    try:
        return str(Role(event.actor_role).label)
    except ValueError:
        return event.actor_role or ""


def _readable(value) -> str:
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_readable(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_readable(v)}" for k, v in value.items())
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


@register.filter
def audit_details(event) -> list[tuple[str, str]]:
    """The event's details as (key, readable value) pairs: a list as "a, b", not
    Python's "['a', 'b']". Details hold no personal data (the audit app's rule)."""
    return [
        (str(key).replace("_", " "), _readable(value))
        for key, value in (event.details or {}).items()
    ]
