from celery import shared_task
from django.db import OperationalError

from apps.accounts.oidc_services import oidc_accounts_check


@shared_task(
    name="accounts.oidc_accounts_check",
    acks_late=True,
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def oidc_accounts_check_task() -> dict[str, int]:
    return oidc_accounts_check()
