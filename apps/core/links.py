"""Links that leave the site (emails, List-Unsubscribe headers, URLs handed to other
systems): absolute, and always on `AMANAH_PUBLIC_URL`.

Never from the request: its Host header is whatever the client sent (a password-reset
email built from it can point at an attacker's site), and a task has no request. Never
a bare path: no mail client can open one.
"""

from typing import Any

from django.conf import settings
from django.urls import get_script_prefix, reverse


def public_url(
    view_or_path: str,
    *,
    args: list[Any] | tuple[Any, ...] | None = None,
    kwargs: dict[str, Any] | None = None,
) -> str:
    """The absolute URL of a view name (`"portal:consents"`, with `args`/`kwargs`) or
    of a site path (`"/me/"`), on `AMANAH_PUBLIC_URL`."""
    if view_or_path.startswith("/"):
        path = view_or_path
    else:
        path = reverse(view_or_path, args=args, kwargs=kwargs)
        # Inside a request mounted under a prefix, reverse() adds it; the public URL
        # already names where the site is mounted.
        prefix = get_script_prefix()
        if prefix != "/" and path.startswith(prefix):
            path = "/" + path[len(prefix) :]
    return settings.AMANAH_PUBLIC_URL.rstrip("/") + path
