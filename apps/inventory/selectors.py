from django.db.models import QuerySet

from apps.inventory.models import ChangeNotice, Recipient, System


def system_list(*, active_only: bool = True) -> QuerySet[System]:
    systems = System.objects.all()
    return systems.filter(active=True) if active_only else systems


def recipient_list(*, active_only: bool = True) -> QuerySet[Recipient]:
    recipients = Recipient.objects.select_related("gating_purpose")
    return recipients.filter(active=True) if active_only else recipients


def change_notice_list(*, limit: int = 50) -> QuerySet[ChangeNotice]:
    return ChangeNotice.objects.order_by("-created_at")[:limit]
