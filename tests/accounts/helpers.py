"""Signing in from tests the way the pages require it."""

from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User
from apps.accounts.selectors import otp_current_code


def sign_in(client: Client, user: User) -> None:
    """Sign `user` in; staff also pass their second factor, as the pages demand."""
    client.force_login(user)
    if not user.is_staff_role:
        return
    device, _ = TOTPDevice.objects.get_or_create(
        user=user, name="authenticator", defaults={"confirmed": True}
    )
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()


def current_code(device: TOTPDevice) -> str:
    """The code an authenticator app would show for `device` right now."""
    return otp_current_code(user=device.user)
