from typing import Any

from django.http import HttpRequest

from apps.core.navigation import nav_for


def navigation(request: HttpRequest) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    return {
        "nav_items": [
            {**item, "current": item["url"] == request.path}
            for item in nav_for(user.role)
        ]
    }
