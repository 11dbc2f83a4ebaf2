from celery import shared_task
from django.conf import settings

from apps.inventory.services import change_notice_send_batch


@shared_task(name="inventory.send_change_notice", acks_late=True)
def change_notice_send_task(notice_id: int) -> int:
    """One batch of change-notice emails; queue the next while anyone is left."""
    if settings.CELERY_TASK_ALWAYS_EAGER:
        total = 0
        while sent := change_notice_send_batch(notice_id=notice_id):
            total += sent
        return total
    sent = change_notice_send_batch(notice_id=notice_id)
    if sent:
        change_notice_send_task.delay(notice_id)
    return sent
