"""Bench data and measured paths that several benchmarks share (`access.py`,
`consent.py`, `retention.py`, `cockpit.py` and `scale.py` each measured them first):
kept here once so that a change to one path changes it for every bench that runs it.

Import it after `_setup.configure_django()`: it imports the models. Running this file
directly does nothing.
"""

import random
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
from django.db import OperationalError, connection, models, transaction
from django.db.models import Model
from django.db.models.deletion import get_candidate_relations_to_delete
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate

from apps.access.models import Interaction, InteractionKind
from apps.access.selectors import VIEW_CUSTOMER
from apps.accounts.models import Role, User
from apps.consent.api import AudienceExportApi
from apps.core.db import declare_disposal
from apps.crypto.keys import key_scope
from apps.crypto.models import DataKey
from apps.customers.models import Customer, CustomerStatus
from apps.retention import services
from apps.retention.models import RetentionPolicy

# The agent's customer list (bench/access.py, bench/scale.py)

# Everyone else's work in the same tables: other agents' open cases, and the agent's
# own closed ones (grant withdrawn).
OTHER_AGENTS = 20
OTHER_OPEN_EACH = 500
OWN_CLOSED = 500
PAGE_SIZE = 1_000  # every assigned customer on one page: an N+1 would show


def others_assign(*, admin: User, customers: list[Any]) -> int:
    """Open cases of other agents, in bulk: the rows and guardian grants the service
    writes, without a provisioned alias or an audit event per case. Returns how many."""
    now = timezone.now()
    rng = random.Random(7)
    interactions: list[Interaction] = []
    for n in range(OTHER_AGENTS):
        other = User.objects.create(
            username=f"bench-agent-{n:02d}", role=Role.SUPPORT_AGENT
        )
        theirs = rng.sample(customers, min(OTHER_OPEN_EACH, len(customers)))
        interactions += [
            Interaction(
                kind=InteractionKind.SUPPORT_CASE,
                staff=other,
                customer_id=pk,
                opened_by=admin,
                opened_at=now - timedelta(hours=1),
                expires_at=now + timedelta(hours=7),
                contact_alias=f"+1556{len(interactions) + i:07d}",
            )
            for i, pk in enumerate(theirs)
        ]
        # A queryset: guardian's bulk path, one insert per agent.
        assign_perm(VIEW_CUSTOMER, other, Customer.objects.filter(pk__in=theirs))
    return len(Interaction.objects.bulk_create(interactions, batch_size=5_000))


def own_history(*, admin: User, agent: User, customers: list[Any]) -> None:
    """Closed cases of the agent: their grants are gone, their rows stay."""
    now = timezone.now()
    rng = random.Random(11)
    Interaction.objects.bulk_create(
        Interaction(
            kind=InteractionKind.SUPPORT_CASE,
            staff=agent,
            customer_id=pk,
            opened_by=admin,
            opened_at=now - timedelta(days=2),
            expires_at=now - timedelta(days=2) + timedelta(hours=8),
            closed_at=now - timedelta(days=1),
            close_reason="closed",
            contact_alias=f"+1557{i:07d}",
        )
        for i, pk in enumerate(rng.sample(customers, min(OWN_CLOSED, len(customers))))
    )


def make_call(user: User) -> Callable[[Callable[..., Response]], Response]:
    """`call(view)`: GET /api/v1/customers/ (one page of `PAGE_SIZE`) as `user`, in a
    key scope as every request runs, rendered."""
    factory = APIRequestFactory()

    def call(view: Callable[..., Response]) -> Response:
        request = factory.get("/api/v1/customers/", {"page_size": PAGE_SIZE})
        force_authenticate(request, user=user)
        with key_scope():  # as KeyScopeMiddleware does for every request
            response = view(request)
            response.render()
        assert response.status_code == 200, (response.status_code, response.content)
        return response

    return call


# The audience (bench/consent.py, bench/scale.py)


def audience_csv_via_api(*, user: User, purpose_code: str) -> Iterator[bytes]:
    """GET /api/v1/consent/audience/<purpose>.csv as `user`: the streamed body."""
    request = APIRequestFactory().get(f"/api/v1/consent/audience/{purpose_code}.csv")
    force_authenticate(request, user=user)
    response = AudienceExportApi.as_view()(request, purpose=purpose_code)
    assert response.status_code == 200, response.status_code
    return (
        chunk.encode() if isinstance(chunk, str) else chunk
        for chunk in response.streaming_content
    )


def copy_chunks(query: str) -> Iterator[bytes]:
    """`COPY (...) TO STDOUT` on Django's connection, as it arrives."""
    with connection.cursor() as cursor, cursor.cursor.copy(query) as copy:
        for chunk in copy:
            yield bytes(chunk)


# The compliance pages (bench/cockpit.py, bench/scale.py)


def signed_in_client(user: User) -> Client:
    """A test client signed in with a confirmed second factor, as the pages demand."""
    client = Client()
    client.force_login(user)
    device = TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


# Disposal of overdue closed accounts (bench/retention.py, bench/scale.py)

DISPOSAL_POLICY = "closed-accounts"


def due_filter(at: datetime) -> dict[str, Any]:
    """The ORM filter of the customers overdue under `DISPOSAL_POLICY` at `at`."""
    policy = RetentionPolicy.objects.get(code=DISPOSAL_POLICY)
    return {
        "erased_at__isnull": True,
        "status": CustomerStatus.CLOSED,
        "closed_at__isnull": False,
        "closed_at__lte": at - timedelta(days=policy.period_days),
    }


class RunStopped(Exception):
    """`purge_run_timed` stopped the run at its `stop_after`."""


def purge_run_timed(
    *, batch_size: int, stop_after: float | None = None, overruns: list | None = None
) -> float:
    """purge_run; returns its longest batch in seconds (each batch is a transaction).
    `stop_after`: raise RunStopped at the first batch that would begin after that
    many seconds (the run is recorded as failed, `RunStopped`). `overruns`:
    appended with the rows of each batch rolled back for running out of its time."""
    batches: list[float] = []
    batch_execute = services.disposal_batch_execute
    started = time.perf_counter()

    def timed(**kwargs: Any) -> Any:
        start = time.perf_counter()
        if stop_after is not None and start - started > stop_after:
            raise RunStopped(max(batches, default=0.0))
        try:
            count, following = batch_execute(**kwargs)
        finally:
            batches.append(time.perf_counter() - start)
        if overruns is not None and following is not None and following.overruns:
            overruns.append(kwargs["cursor"].batch_rows(kwargs["batch_size"]))
        return count, following

    services.disposal_batch_execute = timed
    try:
        services.purge_run(actor=None, batch_size=batch_size)
    finally:
        services.disposal_batch_execute = batch_execute
    return max(batches)


def dependents(model: type[Model]) -> list[tuple[str, str, str]]:
    """(table, column, "delete" or "set null") of every relation pointing at `model`,
    read from Django's metadata as its Collector does, so tables added later are in."""
    found = []
    for rel in get_candidate_relations_to_delete(model._meta):
        handler = rel.on_delete
        if handler is models.CASCADE:
            action = "delete"
        elif handler is models.SET_NULL:
            action = "set null"
        else:  # PROTECT and the rest: nothing of the kind is in the bench data
            continue
        found.append((rel.related_model._meta.db_table, rel.field.column, action))
    return found


def _change(table: str, column: str, action: str, source: str, key: str) -> str:
    """A statement for a writable CTE: delete or detach `table`'s rows whose `column`
    is a `key` of the CTE `source`."""
    if action == "delete":
        return f"DELETE FROM {table} t USING {source} WHERE t.{column} = {source}.{key}"
    return (
        f"UPDATE {table} t SET {column} = NULL FROM {source} "
        f"WHERE t.{column} = {source}.{key}"
    )


def dispose_raw(*, rollback: bool = False, cap_s: float | None = None) -> float:
    """One statement: the due customers once, then writable CTEs for the children,
    the customers and their data keys. Returns the transaction's length in seconds;
    with `rollback` the transaction is rolled back (timed up to the end of the
    statement and its deferred foreign-key checks), so that the same rows can be
    disposed of again another way.

    `cap_s`: the statement and its checks are cancelled after that many seconds (the
    transaction rolled back) and `RawCapped` raised with the seconds it ran: a floor
    of the statement's time, which is all a ratio "at most 1.5x" needs. A statement
    cancelled by hand (`pg_cancel_backend`) before its cap is a floor just the same,
    and raises `RawCapped` too."""
    ctes = [
        "doomed AS MATERIALIZED (SELECT id, data_key_id FROM customers_customer "
        "WHERE erased_at IS NULL AND status = 'closed' AND closed_at IS NOT NULL "
        "AND closed_at <= %(cutoff)s AND id NOT IN (SELECT customer_id "
        "FROM retention_legalhold WHERE customer_id IS NOT NULL "
        "AND released_at IS NULL AND (ends_at IS NULL OR ends_at > %(at)s)))"
    ]
    # Grandchildren (an interaction's relay events...) are not in the bench data, nor
    # rows pointing at both a customer and a key (a row changes once a statement).
    changes = [
        _change(table, column, action, "doomed", "id")
        for table, column, action in dependents(Customer)
    ]
    changes.append(
        "DELETE FROM customers_customer t USING doomed WHERE t.id = doomed.id"
    )
    changes += [
        _change(table, column, action, "doomed", "data_key_id")
        for table, column, action in dependents(DataKey)
        if table != Customer._meta.db_table
    ]
    ctes += [f"c{i} AS ({change})" for i, change in enumerate(changes)]
    statement = (
        "WITH "
        + ", ".join(ctes)
        + " DELETE FROM crypto_datakey k USING doomed WHERE k.id = doomed.data_key_id"
    )
    at = timezone.now()
    cutoff = due_filter(at)["closed_at__lte"]
    start = time.perf_counter()
    try:
        with transaction.atomic(), connection.cursor() as cursor:
            declare_disposal()
            _time_left_set(cursor, cap_s, start)
            cursor.execute(statement, {"cutoff": cutoff, "at": at})
            # The deferred foreign-key checks (the logs' keys are DEFERRABLE INITIALLY
            # DEFERRED) run now, as a commit would run them: a rolled-back statement
            # must not be timed without them.
            _time_left_set(cursor, cap_s, start)
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            seconds = time.perf_counter() - start
            if rollback:
                transaction.set_rollback(True)
    except OperationalError as exc:
        if cap_s is None or not isinstance(exc.__cause__, psycopg.errors.QueryCanceled):
            raise
        raise RawCapped(time.perf_counter() - start) from exc
    return seconds if rollback else time.perf_counter() - start


class RawCapped(Exception):
    """The raw statement was cancelled at its cap; `seconds`: how long it had run."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"raw statement cancelled after {seconds:.1f} s")
        self.seconds = seconds


def _time_left_set(cursor: Any, cap_s: float | None, start: float) -> None:
    """The transaction's statement_timeout: what is left of `cap_s` since `start`."""
    if cap_s is None:
        return
    left_ms = max(1, int((cap_s - (time.perf_counter() - start)) * 1000))
    cursor.execute(f"SET LOCAL statement_timeout = {left_ms}")
