"""Writes on user accounts."""

from django.contrib.auth.models import Permission
from django.db import transaction

from apps.accounts.models import Role, User
from apps.audit import services as audit

# What privacy admins may see in the Django admin (where PII is shown masked only).
ADMIN_VIEW_PERMS = (
    "view_customer",
    "view_datakey",
    "view_auditevent",
    "view_user",
    "view_purpose",
    "add_purpose",
    "change_purpose",
    "view_privacynotice",
    "add_privacynotice",
    "change_privacynotice",
    "add_noticechange",
    "change_noticechange",
    "view_noticechange",
    "view_consentevent",
    "view_consentstate",
    "view_disposalrun",
    "view_disposallogentry",
    "query_audience",
)


@transaction.atomic
def user_ensure_staff(
    *,
    actor: User | None,
    username: str,
    role: Role,
    password: str,
    work_phone: str = "",
) -> User:
    """Create a staff user, or reset an existing one's role and password."""
    user, created = User.objects.select_for_update().get_or_create(
        username=username, defaults={"role": role}
    )
    admin_site = role == Role.PRIVACY_ADMIN
    unchanged = (user.role, user.is_active, user.is_staff, user.work_phone) == (
        role,
        True,
        admin_site,
        work_phone,
    )
    if not created and unchanged and user.check_password(password):
        return user
    user.role = role
    user.is_active = True
    user.is_staff = admin_site
    user.work_phone = work_phone
    user.set_password(password)
    user.save()
    if admin_site:
        user.user_permissions.set(
            Permission.objects.filter(codename__in=ADMIN_VIEW_PERMS)
        )
    audit.record(
        actor=actor,
        action="user.created" if created else "user.reset",
        target=user,
        details={"role": role},
    )
    return user
