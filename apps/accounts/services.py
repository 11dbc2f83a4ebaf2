"""Writes on user accounts."""

from django.db import transaction

from apps.accounts.models import Role, User
from apps.audit import services as audit


@transaction.atomic
def user_ensure_staff(
    *, actor: User | None, username: str, role: Role, password: str
) -> User:
    """Create a staff user, or reset an existing one's role and password."""
    user, created = User.objects.select_for_update().get_or_create(
        username=username, defaults={"role": role}
    )
    if (
        not created
        and user.role == role
        and user.is_active
        and user.check_password(password)
    ):
        return user
    user.role = role
    user.is_active = True
    user.set_password(password)
    user.save()
    audit.record(
        actor=actor,
        action="user.created" if created else "user.reset",
        target=user,
        details={"role": role},
    )
    return user
