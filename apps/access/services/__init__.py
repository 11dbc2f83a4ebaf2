"""Writes for need-to-know access, one module per job:

- `policy`: the access policy matrix;
- `interactions`: support cases and deliveries, with their guardian grants, and
  their expiry;
- `reads`: customers as the actor may see them, each read logged;
- `log`: the access log and its one writer;
- `reveals`: full values for a few minutes, for a reason, and their suspension;
- `relay`: the masked contact relay (the provider's webhook);
- `disposal`: bulk deletes for retention.

The names below are the app's service surface: other apps import them from here. Each
module that takes locks gives their order at its top (apps/core/db.py has the whole).
"""

from apps.access.services.disposal import (
    access_log_delete_bulk,
    access_log_month_detach,
    access_log_months_disposed_drop,
    interactions_delete_bulk,
)
from apps.access.services.interactions import (
    KIND_FOR_ROLE,
    interaction_close,
    interaction_open,
    interactions_expire,
)
from apps.access.services.log import (
    AccessLogRow,
    access_log_write,
    access_log_write_full,
    access_log_write_masked,
)
from apps.access.services.policy import policy_set
from apps.access.services.reads import (
    DeskCustomers,
    customers_read,
    customers_read_for_desk,
)
from apps.access.services.relay import relay_route, relay_signature, relay_verify
from apps.access.services.reveals import reveal_open, reveals_live_lock, reveals_suspend

__all__ = [
    "KIND_FOR_ROLE",
    "AccessLogRow",
    "DeskCustomers",
    "access_log_delete_bulk",
    "access_log_month_detach",
    "access_log_months_disposed_drop",
    "access_log_write",
    "access_log_write_full",
    "access_log_write_masked",
    "customers_read",
    "customers_read_for_desk",
    "interaction_close",
    "interaction_open",
    "interactions_delete_bulk",
    "interactions_expire",
    "policy_set",
    "relay_route",
    "relay_signature",
    "relay_verify",
    "reveal_open",
    "reveals_live_lock",
    "reveals_suspend",
]
