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


def status_banner(request):
    """While an incident with a published status update is unresolved, signed-in
    customers' pages show that update (from the status page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.role != "customer":
        return {}
    from apps.incidents.selectors import status_banner as banner

    return {"status_banner": banner()}
