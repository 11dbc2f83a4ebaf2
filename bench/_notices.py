"""Breach notices queued for N affected people, measured: shared by `incidents.py`
and `scale.py`.

`incident_with_affected` registers a breach and snapshots N customers as affected by
SQL (the same rows `affected_select` writes, without its Python loop);
`queue_measured` runs `notices_queue` for it in a forked process with DEBUG's query
log off (as in production), and returns its seconds, the growth of its resident
memory (peak `VmHWM` after a reset, less `VmRSS` at the reset: the forked Django
process's own fixed base, some 100 MB, is left out; heap the parent freed before
the fork is reused without growing, so the figure is a floor, the same at every size),
the notices queued, and (`split`, as `notices_measure` asks) the peak growth of each
kind (`_setup.resident_split`: the private memory the work could grow, and the code
pages the child faults in again after the fork, most of the figure at every size).

Import it after `_setup.configure_django()`: it imports the models. Running this file
directly does nothing.
"""

import multiprocessing
import time
from contextlib import nullcontext
from datetime import timedelta
from typing import Any

import _setup
from django.conf import settings
from django.db import connection, connections
from django.utils import timezone

from apps.accounts.models import User
from apps.incidents.models import (
    AffectedCustomer,
    Incident,
    IncidentNotice,
    NoticeWording,
)
from apps.incidents.services import incident_create, notices_queue


def incident_make(admin: User) -> Incident:
    """A high-risk breach of contact and identity data, every text written."""
    now = timezone.now()
    return incident_create(
        actor=admin,
        data={
            "title": "Bench breach",
            "kind": "breach",
            "severity": "high",
            "occurred_at": now - timedelta(days=1),
            "detected_at": now - timedelta(hours=12),
            "aware_at": now - timedelta(hours=10),
            "data_categories": ["contact", "identity"],
            "risk_level": "high",
            "what_happened": "An export of contact details reached the wrong vendor.",
            "what_we_are_doing": "The vendor deleted it; we are auditing every export.",
            "what_you_can_do": "Be wary of messages asking for your password.",
            "contact": "privacy@amanah.example",
        },
    )


def incident_with_affected(admin: User, people: int | None = None) -> Incident:
    """A new incident affecting the first `people` customers (by id; all when None),
    snapshotted by one INSERT ... SELECT. Returns the incident."""
    incident = incident_make(admin)
    limit = "" if people is None else "LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO incidents_affectedcustomer (incident_id, customer_id, "
            "country, region, mailbox_compromised, remedy_code, erased_before_notice, "
            "erased_at) SELECT %s, c.id, c.country, c.region, false, '', "
            "c.erased_at IS NOT NULL, c.erased_at FROM (SELECT id, country, region, "
            f"erased_at FROM customers_customer ORDER BY id {limit}) c",
            [incident.pk] + ([] if people is None else [people]),
        )
    _setup.vacuum_analyze("incidents_affectedcustomer")
    return incident


def _queue(incident_id: Any, admin_id: int, split: bool, answer: Any) -> None:
    # DEBUG's query log (bench settings) keeps the text of every statement: a
    # production process keeps none, and its memory is what is measured.
    settings.DEBUG = False
    connection.queries_log.clear()
    incident = Incident.objects.get(pk=incident_id)
    admin = User.objects.get(pk=admin_id)
    # The sampler's thread, when asked for, runs before the base is taken: its own
    # stack and code pages are not counted as the queueing's.
    with _setup.resident_split() if split else nullcontext({}) as kinds:
        base = _setup.proc_status_mb("VmRSS")
        _setup.peak_rss_reset()
        start = time.perf_counter()
        queued = notices_queue(actor=admin, incident=incident)
        seconds = time.perf_counter() - start
        peak = _setup.proc_status_mb("VmHWM") - base
    answer.send((seconds, peak, queued, kinds))
    connections.close_all()


def queue_measured(
    incident: Incident, admin: User, *, split: bool = False
) -> tuple[float, float, int, dict[str, float]]:
    """`notices_queue` for `incident` in a forked process: (seconds, growth of its
    peak resident memory in MB, notices queued, and with `split` the peak growth of
    each kind, {"anon_mb", "file_mb"}, else {}). Without `split` no thread runs
    beside it, as in bench/incidents.py's other ways measured."""
    connections.close_all()
    parent, child = multiprocessing.Pipe()
    process = multiprocessing.get_context("fork").Process(
        target=_queue, args=(incident.pk, admin.pk, split, child)
    )
    process.start()
    answer = parent.recv()
    process.join()
    if process.exitcode:
        raise RuntimeError(f"notices_queue's process exited with {process.exitcode}")
    return answer


def incident_clear(incident: Incident) -> None:
    """Delete the incident's notices, their wordings and its affected rows (bench
    data: the disk)."""
    IncidentNotice.objects.filter(incident=incident).delete()
    NoticeWording.objects.filter(incident=incident).delete()
    AffectedCustomer.objects.filter(incident=incident).delete()


def notices_measure(*, admin: User, people: int | None = None) -> dict[str, Any]:
    """Every customer (or the first `people`) affected, their notices queued and
    measured, then deleted again: {"people", "notices", "seconds", "per_s",
    "peak_mb", "anon_mb", "file_mb"}."""
    incident = incident_with_affected(admin, people)
    count = AffectedCustomer.objects.filter(incident=incident).count()
    seconds, peak_mb, queued, kinds = queue_measured(incident, admin, split=True)
    incident_clear(incident)
    return {
        "people": count,
        "notices": queued,
        "seconds": seconds,
        "per_s": queued / seconds if seconds else None,
        "peak_mb": peak_mb,
        **kinds,
    }
