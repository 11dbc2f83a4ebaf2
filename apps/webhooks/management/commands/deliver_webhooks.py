from typing import Any

from apps.core.commands import PlainErrorCommand
from apps.webhooks.selectors import deliveries_pending_count
from apps.webhooks.services import deliveries_send_all_due_counted


class Command(PlainErrorCommand):
    help = (
        "Send the webhook deliveries that are due now (what a worker and beat's "
        "webhooks.deliver do), then print the counts. Exit 0."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = deliveries_send_all_due_counted()
        self.stdout.write(
            f"Sent {counts.claimed}: delivered {counts.delivered}, "
            f"failed {counts.failed}, cancelled {counts.cancelled}; "
            f"pending {deliveries_pending_count()}."
        )
