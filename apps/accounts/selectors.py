from typing import Literal

from django_otp import user_has_device
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import User


def user_get_by_username(*, username: str) -> User | None:
    return User.objects.filter(username=username).first()


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
