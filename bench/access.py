"""What need-to-know access costs an agent's customer list.

A support agent with open assignments among 100,000 customers lists their customers
through the API (`GET /api/v1/customers/`): guardian grant, open interaction and live
reveals checked in one SQL statement, policy masking, one access-log insert.

1. Queries per GET with 10, 50 and 200 open assignments, the access-log insert
   included: constant (no N+1); beside them the queries of the naive list below.
2. Latency of that GET with 50 assignments vs the naive list (the same customers by
   primary key, the same policy masking, no permission filter, no access log) vs a
   plain SQL SELECT of those rows.
3. The agent's list query alone (guardian grant, open interaction, live reveals, data
   keys), and guardian's own grant check, vs the same customers by primary key vs SQL:
   what the permission check costs. And the list query prepared (as it runs) vs not:
   whether `prepare=True` in `_customers_assigned` pays.

Other agents hold open cases and the agent has closed ones, so the permission and
interaction tables are not the agent's open cases alone. `BENCH_CUSTOMERS=10000` gives a
quick, smaller run; the goals are set for 100,000.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import json
import os
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

from _common import OTHER_AGENTS, OWN_CLOSED, make_call, others_assign, own_history
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from guardian.shortcuts import get_objects_for_user
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.access.api import CUSTOMER_ORDER, CustomerListCreateApi
from apps.access.models import (
    AccessLogEntry,
    CustomerUserObjectPermission,
    InteractionKind,
)
from apps.access.selectors import (
    VIEW_CUSTOMER,
    _customers_assigned,
    customers_assigned_list,
    policy_matrix,
)
from apps.access.services import interaction_open
from apps.access.services.reads import _shape
from apps.accounts.models import Role, User
from apps.core.pagination import paginated_response
from apps.crypto.keys import data_keys_preload
from apps.customers.models import Customer
from apps.customers.selectors import customer_queryset

CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "100000"))
ASSIGNMENT_STEPS = (10, 50, 200)
TIMED_ASSIGNMENTS = 50
API_RUNS = 31
QUERY_RUNS = 101

COLUMNS = ", ".join(
    f.column for f in Customer._meta.concrete_fields if f.column != "user_id"
)


class NaiveAssignedListApi(APIView):
    """The agent's list without need-to-know: the same customers by primary key, the
    same order, pagination and policy masking; no permission filter, no access log."""

    permission_classes = CustomerListCreateApi.permission_classes
    customer_ids: list[Any] = []  # set per view by as_view()

    def get(self, request: Request) -> Response:
        customers = Customer.objects.filter(pk__in=self.customer_ids)
        return paginated_response(
            request=request,
            order=CUSTOMER_ORDER,
            items=customers,
            serialize=lambda page: naive_read(actor=request.user, customers=page),
        )


def naive_read(*, actor: User, customers: list[Customer]) -> list[dict[str, Any]]:
    """`customers_read` less the access context and the access log."""
    data_keys_preload(c.data_key_id for c in customers)
    matrix = policy_matrix()
    return [
        _shape(actor=actor, customer=c, matrix=matrix, revealed=set(), capped=False)[0]
        for c in customers
    ]


# Measurements


def query_count(call: Callable[[], object]) -> int:
    with CaptureQueriesContext(connection) as queries:
        call()
    return len(queries)


def bench_queries(
    *, assigned: int, agent: User, customer_ids: list[Any], baseline: int | None
) -> tuple[Row, int]:
    """1. Queries of one GET with `assigned` open assignments. Returns the row and the
    count (the first step's is the baseline of the next ones)."""
    call = make_call(agent)
    ours_view = CustomerListCreateApi.as_view()
    naive_view = NaiveAssignedListApi.as_view(customer_ids=customer_ids)
    # Warm: one-off lookups (content types, permissions) are not per request.
    call(ours_view)
    call(naive_view)
    logged_before = AccessLogEntry.objects.count()
    ours = query_count(lambda: call(ours_view))
    # Every assigned customer was listed and logged: the count is for all of them.
    assert AccessLogEntry.objects.count() - logged_before == assigned
    naive = query_count(lambda: call(naive_view))
    baseline = ours if baseline is None else baseline
    return (
        Row(
            f"queries per GET, {assigned} assigned",
            ours,
            naive,
            None,
            goal=f"= {baseline} (at {ASSIGNMENT_STEPS[0]})",
            ok=ours == baseline,
            naive_label="naive",
            fmt="{:.0f}",
        ),
        baseline,
    )


def bench_latency(*, agent: User, customer_ids: list[Any]) -> Row:
    """2. GET as the agent with 50 assignments vs the naive list vs SQL."""
    call = make_call(agent)
    ours_view = CustomerListCreateApi.as_view()
    naive_view = NaiveAssignedListApi.as_view(customer_ids=customer_ids)

    # Both must serve the same page, or the comparison means nothing.
    ours_page = json.loads(call(ours_view).content)["results"]
    naive_page = json.loads(call(naive_view).content)["results"]
    assert len(ours_page) == len(customer_ids), len(ours_page)
    assert ours_page == naive_page

    ours_ms, naive_ms, raw_ms = (
        seconds * 1e3
        for seconds in _setup.median_interleaved(
            [
                lambda: call(ours_view),
                lambda: call(naive_view),
                lambda: raw_select(customer_ids),
            ],
            runs=API_RUNS,
        )
    )
    return Row(
        f"GET as agent, {len(customer_ids)} assigned (ms)",
        ours_ms,
        naive_ms,
        raw_ms,
        goal="≤1.5x naive",
        ok=ours_ms <= 1.5 * naive_ms,
        naive_label="naive",
        raw_label="SQL",
        fmt="{:.2f}",
    )


def bench_filter(*, agent: User, customer_ids: list[Any]) -> list[Row]:
    """3. The assigned customers' rows through the agent's list query, then through
    guardian's grant check alone, each vs the same rows by pk vs SQL; and the list
    query prepared vs the same query not prepared, in the same rounds."""

    def assigned() -> None:
        assert len(customers_assigned_list(agent)) == len(customer_ids)

    def unprepared() -> None:
        found = _customers_assigned(agent, only_ids=None, prepare=False)
        assert len(found) == len(customer_ids)

    def granted() -> None:
        rows = get_objects_for_user(
            agent,
            VIEW_CUSTOMER,
            klass=customer_queryset(),
            use_groups=False,
            with_superuser=False,
            accept_global_perms=False,
        ).order_by("-created_at", "pk")
        assert len(list(rows)) == len(customer_ids)

    def by_pk() -> None:
        rows = Customer.objects.filter(pk__in=customer_ids).order_by(
            "-created_at", "pk"
        )
        assert len(list(rows)) == len(customer_ids)

    seconds = _setup.median_interleaved(
        [assigned, unprepared, granted, by_pk, lambda: raw_select(customer_ids)],
        runs=QUERY_RUNS,
    )
    assigned_ms, unprepared_ms, granted_ms, by_pk_ms, raw_ms = (
        s * 1e3 for s in seconds
    )
    return [
        Row(
            f"  of which: assigned list query, {len(customer_ids)} rows (ms)",
            assigned_ms,
            by_pk_ms,
            raw_ms,
            goal="(explains 2)",
            ok=None,
            naive_label="by pk",
            raw_label="SQL",
            fmt="{:.2f}",
        ),
        Row(
            "  the list query prepared vs not (ms)",
            assigned_ms,
            unprepared_ms,
            None,
            # Under 3% is noise: `prepare=True` must save more to stay.
            goal="≤0.97x unprepared",
            ok=assigned_ms <= 0.97 * unprepared_ms,
            naive_label="unprepared",
            fmt="{:.2f}",
        ),
        Row(
            "  guardian get_objects_for_user instead (ms)",
            granted_ms,
            by_pk_ms,
            raw_ms,
            goal="(explains 2)",
            ok=None,
            naive_label="by pk",
            raw_label="SQL",
            fmt="{:.2f}",
        ),
    ]


def raw_select(customer_ids: list[Any]) -> None:
    """The raw limit: the same rows, every column, one plain SELECT."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {COLUMNS} FROM customers_customer WHERE id = ANY(%s) "
            "ORDER BY created_at DESC, id",
            [customer_ids],
        )
        assert len(cursor.fetchall()) == len(customer_ids)


def main() -> None:
    with _setup.bench_database(DB_NAME):
        print(_setup.machine_context())
        load = _setup.customers_load(
            CUSTOMERS, start=timezone.now() - timedelta(days=365)
        )
        admin = User.objects.create(username="bench-admin", role=Role.PRIVACY_ADMIN)
        agent = User.objects.create(username="bench-agent", role=Role.SUPPORT_AGENT)
        everyone = list(Customer.objects.values_list("pk", flat=True))
        others = others_assign(admin=admin, customers=everyone)
        own_history(admin=admin, agent=agent, customers=everyone)
        _setup.vacuum_analyze(
            "customers_customer",
            "crypto_datakey",
            "access_interaction",
            "access_customeruserobjectpermission",
        )
        grants = CustomerUserObjectPermission.objects.count()
        print(
            f"data: {CUSTOMERS:,} customers loaded in {load:.1f} s; {others:,} open "
            f"cases of {OTHER_AGENTS} other agents ({grants:,} guardian grants), "
            f"{OWN_CLOSED} closed cases of the agent"
        )
        # The permission the list checks: the agent holds no global one.
        assert not Permission.objects.filter(user=agent).exists()

        # The agent's own cases go through the service, grant and audit included.
        rng = random.Random(3)
        picked = rng.sample(everyone, ASSIGNMENT_STEPS[-1])
        rows: list[Row] = []
        baseline: int | None = None
        assigned: list[Any] = []
        latency_row: Row | None = None
        filter_rows: list[Row] = []
        for step in ASSIGNMENT_STEPS:
            new = picked[len(assigned) : step]
            for customer in Customer.objects.filter(pk__in=new):
                interaction_open(
                    actor=admin,
                    staff=agent,
                    customer=customer,
                    kind=InteractionKind.SUPPORT_CASE,
                )
            assigned = picked[:step]
            row, baseline = bench_queries(
                assigned=step, agent=agent, customer_ids=assigned, baseline=baseline
            )
            rows.append(row)
            if step == TIMED_ASSIGNMENTS:
                latency_row = bench_latency(agent=agent, customer_ids=assigned)
                filter_rows = bench_filter(agent=agent, customer_ids=assigned)
        assert latency_row is not None
        print()
        _setup.print_table([*rows, latency_row, *filter_rows])


if __name__ == "__main__":
    main()
