from apps.accounts.models import Role
from apps.incidents.selectors import status_banner as banner


def status_banner(request):
    """While an incident with a published status update is unresolved, signed-in
    customers' pages show that update (from the status page)."""
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or user.role != Role.CUSTOMER:
        return {}
    return {"status_banner": banner()}
