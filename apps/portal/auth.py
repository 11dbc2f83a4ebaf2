"""Customers sign in with their email address (found through the blind index)."""

from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.http import HttpRequest

from apps.accounts.models import Role, User
from apps.crypto.blind import blind_index, normalize_email
from apps.customers.selectors import customer_find_by_email


class CustomerEmailBackend(ModelBackend):
    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        *,
        email: str | None = None,
        **kwargs: Any,
    ) -> User | None:
        """The customer whose email and password these are. `username` is the staff
        sign-in's (ModelBackend's signature): a customer gives an email instead."""
        if not email or not password:
            return None
        customer = customer_find_by_email(email=email)
        user = customer.user if customer is not None else None
        if user is None or user.role != Role.CUSTOMER:
            # Hash anyway: an unknown address must take as long as a wrong password.
            get_user_model()().set_password(password)
            return None
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None


def axes_username(request, credentials: dict | None) -> str:
    """What django-axes records and throttles on: the staff username, or for customers
    a keyed hash of the email address (never the address itself)."""
    credentials = credentials or {}
    email = credentials.get("email") or request.POST.get("email")
    if email:
        return "email:" + blind_index("axes.email", normalize_email(email))[:40]
    return credentials.get("username") or request.POST.get("username", "")
