from apps.core.navigation import nav_for


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    current = request.path
    items = nav_for(user.role)
    for item in items:
        item["current"] = item["url"] == current
    return {"nav_items": items}
