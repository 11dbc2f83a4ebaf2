"""The invariants bench/soak.py checks after its run, and its table.

Each check reads the soak's database (Django is configured by soak.py) or the logs the
run produced, and returns figures and a short reason; none prints PII. SQL names
tables directly: this is a bench reading what the app wrote, not app code.
"""

import re
import subprocess
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

PG_LOG = Path("/var/log/postgresql/postgresql-15-main.log")
# The last line of a traceback: "package.module.SomeError: message".
EXCEPTION_LINE = re.compile(
    r"^(?!Traceback|The above|During handling)(?=[\w.]*[a-z])[A-Za-z_][\w.]*(: |$)"
)
# apps/access/services/reveals.py logs each refusal of a suspended agent's reveal:
# the only trace it leaves (no reveal row, no audit entry).
SUSPENDED_REFUSAL = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) .*"
    r"access\.reveal_suspended_refused staff=(\d+)"
)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@dataclass(frozen=True)
class Line:
    """One row of the soak's table. `invariant`: a broken one fails the run; a goal
    (throughput, size) is shown with its ok but does not; `ok=None` explains."""

    measurement: str
    value: str
    goal: str = ""
    ok: bool | None = None
    invariant: bool = False


def print_lines(lines: Sequence[Line]) -> None:
    header = ["measurement", "value", "goal", "ok"]
    table = [header] + [
        [
            line.measurement,
            line.value,
            line.goal,
            "-" if line.ok is None else "yes" if line.ok else "NO",
        ]
        for line in lines
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        print("  ".join(cells).rstrip())


def _rows(sql: str, params: Sequence[Any] = ()) -> list[tuple]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


# Consent: the state table is a replay of the ledger.


def consent_replay() -> dict[str, int]:
    """Per customer and purpose, the latest event (by id) against the state row.
    A state without events is allowed (disposal may delete old events; the state
    stands), an event without a state is not."""
    [(pairs, differ, stateless)] = _rows(
        """
        WITH latest AS (
          SELECT DISTINCT ON (customer_id, purpose_id)
                 customer_id, purpose_id, id, granted, notice_version, source
          FROM consent_consentevent
          ORDER BY customer_id, purpose_id, id DESC
        )
        SELECT count(*),
               count(*) FILTER (WHERE s.customer_id IS NOT NULL AND (
                 s.last_event_id <> l.id OR s.granted <> l.granted
                 OR s.notice_version <> l.notice_version OR s.source <> l.source)),
               count(*) FILTER (WHERE s.customer_id IS NULL)
        FROM latest l
        LEFT JOIN consent_consentstate s USING (customer_id, purpose_id)
        """
    )
    return {"pairs": pairs, "differ": differ, "no_state": stateless}


# Reveals: no agent above the hourly limit in any hour.


def reveal_peaks() -> list[tuple[int, int]]:
    """(staff id, most granted reveals in any hour ending at one of theirs), highest
    first. Counted as the app counts: granted or later suspended."""
    return _rows(
        """
        SELECT a.staff_id, max(n) FROM (
          SELECT r.staff_id, (
            SELECT count(*) FROM access_reveal b
            WHERE b.staff_id = r.staff_id
              AND b.status IN ('granted', 'suspended')
              AND b.created_at > r.created_at - interval '1 hour'
              AND b.created_at <= r.created_at) AS n
          FROM access_reveal r WHERE r.status IN ('granted', 'suspended')
        ) a GROUP BY a.staff_id ORDER BY 2 DESC
        """
    )


# Suspended reveals: refused only while an alert held them, never granted then.


def suspension_holds() -> dict[int, list[tuple[datetime, datetime | None]]]:
    """Per staff member, each (start, end) an alert held their reveals suspended:
    from `reveals_suspended_at` until the alert was dismissed or escalated (its
    `handled_at`; None: it holds still). The soak's officer never suspends by hand,
    so `reveals_suspended_at` is the one the alert was raised with."""
    from apps.monitoring.models import Alert, AlertStatus

    lifted = {AlertStatus.DISMISSED, AlertStatus.ESCALATED}
    holds: dict[int, list[tuple[datetime, datetime | None]]] = defaultdict(list)
    for staff_id, start, status, handled_at in Alert.objects.filter(
        staff__isnull=False, reveals_suspended_at__isnull=False
    ).values_list("staff_id", "reveals_suspended_at", "status", "handled_at"):
        holds[staff_id].append((start, handled_at if status in lifted else None))
    return holds


def suspension_result(web_log: Path, *, grace_s: float = 1.0) -> dict[str, int]:
    """Each `reveals_suspended` refusal in the app log against the alerts' holds, and
    the granted reveals against them too.

    A refusal is inside a hold when it was logged at or after the suspension (the log
    keeps milliseconds: compared at that precision) and, for a lifted alert, at most
    `grace_s` after `handled_at`: the refusal read the alert before the dismissal
    committed, but the dismissal takes its time before it commits, and the line is
    logged after the read. A reveal granted at or after `reveals_suspended_at` and
    before `handled_at` broke the suspension (both times are taken under the staff
    member's row lock, or before a commit the reveal could not have seen)."""
    from datetime import timedelta
    from zoneinfo import ZoneInfo

    from django.conf import settings

    from apps.access.models import Reveal, RevealStatus
    from apps.monitoring.models import Alert, AlertStatus

    holds = suspension_holds()
    zone = ZoneInfo(settings.TIME_ZONE)  # Django sets the process's TZ to it
    grace = timedelta(seconds=grace_s)
    logged = outside = 0
    if web_log.exists():
        for line in web_log.read_text(errors="replace").splitlines():
            if not (m := SUSPENDED_REFUSAL.match(line)):
                continue
            logged += 1
            at = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S,%f").replace(
                tzinfo=zone
            )
            if not any(
                start.replace(microsecond=start.microsecond // 1000 * 1000) <= at
                and (end is None or at <= end + grace)
                for start, end in holds.get(int(m.group(2)), [])
            ):
                outside += 1
    granted_while_held = 0
    for staff_id, created_at in Reveal.objects.filter(
        staff_id__in=list(holds),
        status__in=[RevealStatus.GRANTED, RevealStatus.SUSPENDED],
    ).values_list("staff_id", "created_at"):
        granted_while_held += any(
            start <= created_at and (end is None or created_at < end)
            for start, end in holds[staff_id]
        )
    return {
        "logged": logged,
        "outside": outside,
        "granted_while_held": granted_while_held,
        "holding_alerts": sum(map(len, holds.values())),
        "lifted": Alert.objects.filter(
            reveals_suspended_at__isnull=False,
            status__in=[AlertStatus.DISMISSED, AlertStatus.ESCALATED],
            handled_by__username__startswith="soak-officer-",
        ).count(),
    }


# Disposal: the log says what SQL removed, no more, no less.


def disposal_snapshot() -> dict[str, Any]:
    """Before the run: who is due under the customer policies, who is held, who is
    not erased yet."""
    from apps.customers.models import Customer
    from apps.retention.models import Covers, LegalHold, RetentionPolicy
    from apps.retention.selectors import disposable

    due: set = set()
    for policy in RetentionPolicy.objects.filter(
        enabled=True, covers__in=[Covers.CLOSED_ACCOUNTS, Covers.INACTIVE_CUSTOMERS]
    ):
        due |= set(disposable(policy).values_list("pk", flat=True))
    return {
        "due": due,
        "held": set(
            LegalHold.objects.filter(
                released_at__isnull=True, customer__isnull=False
            ).values_list("customer_id", flat=True)
        ),
        "present": set(
            Customer.objects.filter(erased_at__isnull=True).values_list("pk", flat=True)
        ),
    }


def disposal_result(snapshot: dict[str, Any], *, since) -> dict[str, Any]:
    """After the drain: customers erased or deleted since the snapshot, against the
    disposal log of the runs started since `since`."""
    from apps.customers.models import Customer
    from apps.retention.models import Covers, DisposalLogEntry, DisposalRun
    from apps.retention.services import subject_ref

    still = set(
        Customer.objects.filter(erased_at__isnull=True).values_list("pk", flat=True)
    )
    removed = snapshot["present"] - still
    runs = list(DisposalRun.objects.filter(started_at__gte=since))
    refs = list(
        DisposalLogEntry.objects.filter(
            run__in=runs,
            policy__covers__in=[Covers.CLOSED_ACCOUNTS, Covers.INACTIVE_CUSTOMERS],
        ).values_list("subject_ref", flat=True)
    )
    expected = Counter(subject_ref(pk) for pk in removed)
    logged = Counter(refs)
    progress = _rows(
        """
        SELECT p.policy_id, p.disposed, coalesce(sum(l.records), 0)
        FROM retention_disposalprogress p
        LEFT JOIN retention_disposallogentry l
          ON l.run_id = p.run_id AND l.policy_id = p.policy_id
        WHERE p.run_id = ANY(%s)
        GROUP BY p.policy_id, p.disposed, p.run_id
        """,
        [[run.pk for run in runs]],
    )
    return {
        "runs": [(run.pk, run.status) for run in runs],
        "removed": len(removed),
        "due": len(snapshot["due"]),
        "not_due_removed": len(removed - snapshot["due"]),
        "due_kept": len((snapshot["due"] - removed) - snapshot["held"]),
        "held_removed": len(removed & snapshot["held"]),
        "logged": sum(logged.values()),
        "log_mismatch": sum((logged - expected).values())
        + sum((expected - logged).values()),
        "progress_mismatch": sum(1 for _, disposed, log in progress if disposed != log),
    }


# Breach notices: each sent once, or failed with a reason; none left queued.


def notices_due_count() -> int:
    """Notices the app would try now (queued ones, and retries whose time has come),
    and claims no worker settled (a retry waiting for its time, with its reason, is
    not stuck)."""
    from django.utils import timezone

    from apps.incidents.models import IncidentNotice
    from apps.incidents.selectors import notices_due

    claimed = IncidentNotice.objects.filter(status="sending").count()
    return notices_due(now=timezone.now()).count() + claimed


def notices_result(incident_id, *, mail_log: Path, mail_key: str) -> dict[str, Any]:
    from _soak_mail import mail_hash

    from apps.crypto.keys import key_scope
    from apps.customers.models import Customer
    from apps.incidents.models import IncidentNotice
    from apps.incidents.services import OUTCOME_UNKNOWN

    notices = list(
        IncidentNotice.objects.filter(incident_id=incident_id).select_related("wording")
    )
    by_status = Counter(n.status for n in notices)
    email = [n for n in notices if n.channel == "email"]
    with key_scope():
        emails = {
            c.pk: c.email
            for c in Customer.objects.filter(pk__in={n.customer_id for n in email})
        }

    def key(notice) -> tuple[str, str]:
        address = (emails.get(notice.customer_id) or "").strip().lower()
        return mail_hash(mail_key, address), mail_hash(mail_key, notice.subject)

    expected = {key(n) for n in email if n.status == "sent"}
    # Its sender died between the claim and the mark: mailed or not, never again.
    unknown = {key(n) for n in email if n.error == OUTCOME_UNKNOWN}
    subjects = {mail_hash(mail_key, n.subject) for n in notices}
    lines = Counter()
    if mail_log.exists():
        for line in mail_log.read_text().splitlines():
            rcpt, _, subject = line.partition(" ")
            if subject in subjects:
                lines[(rcpt, subject)] += 1
    return {
        "total": len(notices),
        "by_status": dict(by_status),
        "due": notices_due_count(),
        "failed_without_reason": sum(
            1
            for n in notices
            if n.status in ("failed", "retrying") and not n.error.strip()
        ),
        "failed_reasons": Counter(n.error for n in notices if n.status == "failed"),
        "sent_without_time": sum(
            1 for n in notices if n.status == "sent" and n.sent_at is None
        ),
        "outcome_unknown": len(unknown),
        "emails_sent_twice": sum(max(0, n - 1) for n in lines.values()),
        "emails_marked_sent_never_mailed": sum(1 for k in expected if not lines[k]),
        "emails_mailed_not_marked_sent": sum(
            n for k, n in lines.items() if k not in expected | unknown
        ),
    }


# The audit chain.


def audit_chain(env: dict[str, str], root: Path) -> tuple[bool, str]:
    done = subprocess.run(  # noqa: S603 - our interpreter and manage.py
        [env.get("SOAK_PYTHON", "python"), "manage.py", "verify_audit_chain"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    text = (done.stdout + done.stderr).strip().splitlines()
    return done.returncode == 0, text[-1] if text else f"exit {done.returncode}"


# Deadlocks: PostgreSQL's own count for the database, and its log lines.


def deadlock_count(database: str) -> int:
    [(count,)] = _rows(
        "SELECT coalesce(sum(deadlocks), 0) FROM pg_stat_database WHERE datname = %s",
        [database],
    )
    return int(count)


def pg_log_offset() -> int:
    try:
        return PG_LOG.stat().st_size
    except OSError:
        return -1


def pg_log_extract(database: str, offset: int, out: Path) -> list[str]:
    """Copy the server log lines of `database` (with their DETAIL/STATEMENT lines)
    written since `offset` to `out`; return its 'deadlock detected' entries, each
    with the lines that follow it from the same backend."""
    if offset < 0:
        return []
    try:
        with PG_LOG.open("rb") as f:
            # Rotated meanwhile: the new file holds the rest of the run.
            f.seek(offset if PG_LOG.stat().st_size >= offset else 0)
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return []
    marker = f"@{database} "
    kept: list[str] = []
    entries: list[list[str]] = []
    pid_of_entry: dict[str, list[str]] = {}
    current_pid = None
    for line in text.splitlines():
        match = re.match(r"\S+ \S+ \S+ \[(\d+)\] ", line)
        if match:
            current_pid = match.group(1) if marker in line else None
            if current_pid is None:
                continue
            kept.append(line)
            if "deadlock detected" in line:
                entry = [line]
                entries.append(entry)
                pid_of_entry[current_pid] = entry
            elif current_pid in pid_of_entry and re.search(
                r"(DETAIL|HINT|CONTEXT|STATEMENT):", line
            ):
                pid_of_entry[current_pid].append(line)
            else:
                pid_of_entry.pop(current_pid, None)
        elif current_pid is not None:
            kept.append(line)
            if current_pid in pid_of_entry:
                pid_of_entry[current_pid].append(line)
    out.write_text("\n".join(kept) + ("\n" if kept else ""))
    return ["\n".join(entry) for entry in entries]


# What the logs say.


def _collapse(path: str) -> str:
    return UUID.sub("{id}", path.split("?", 1)[0])


def web_errors(log: Path) -> Counter:
    """Django's 'Internal Server Error: PATH' entries, by path and the exception that
    ended the traceback."""
    found: Counter = Counter()
    if not log.exists():
        return found
    path = None
    last = ""
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r"Internal Server Error: (\S+)", line)
        if match:
            if path:
                found[(path, last)] += 1
            path, last = _collapse(match.group(1)), ""
        elif path and EXCEPTION_LINE.match(line):
            last = line[:160]
        elif path and re.match(
            r"^\S.*\[(INFO|WARNING|ERROR)\]|^\d{4}-\d\d-\d\d ", line
        ):
            found[(path, last)] += 1
            path = None
    if path:
        found[(path, last)] += 1
    return found


def access_log_statuses(log: Path) -> Counter:
    """(method path, status) of gunicorn's access log lines with a 5xx status."""
    found: Counter = Counter()
    if not log.exists():
        return found
    for line in log.read_text(errors="replace").splitlines():
        match = re.search(r'"(\w+) (\S+) [^"]*" (\d{3}) ', line)
        if match and match.group(3).startswith("5"):
            found[
                (f"{match.group(1)} {_collapse(match.group(2))}", match.group(3))
            ] += 1
    return found


def task_outcomes(log: Path) -> dict[str, Counter]:
    """From the Celery worker log: tasks that succeeded, failed, retried or were
    lost with their worker process, by task name (and exception)."""
    out: dict[str, Counter] = defaultdict(Counter)
    if not log.exists():
        return out
    for line in log.read_text(errors="replace").splitlines():
        if m := re.search(r"Task ([\w.]+)\[[^\]]+\] succeeded", line):
            out["succeeded"][m.group(1)] += 1
        elif m := re.search(r"Task ([\w.]+)\[[^\]]+\] retry: (.*)", line):
            out["retried"][(m.group(1), m.group(2)[:140])] += 1
        elif m := re.search(
            r"Task ([\w.]+)\[[^\]]+\] raised unexpected: (\w+)\((.{0,120})", line
        ):
            out["failed"][(m.group(1), f"{m.group(2)}({m.group(3)}")] += 1
        elif m := re.search(r"Task handler raised error: (WorkerLostError.*)", line):
            out["lost"][m.group(1)[:140]] += 1
    return out


def mentions(logs: Iterable[Path], text: str) -> int:
    return sum(
        path.read_text(errors="replace").count(text) for path in logs if path.exists()
    )


def canary_leaks(logs: Iterable[Path], values: dict[str, str]) -> dict[str, list[str]]:
    """For each log file, the canary fields any of whose values it holds (the field
    names only: the file itself holds the value)."""
    leaks: dict[str, list[str]] = {}
    for path in logs:
        if not path.exists():
            continue
        text = path.read_bytes().decode("utf-8", "replace").lower()
        hit = sorted(
            {field for field, value in values.items() if value.lower() in text}
        )
        if hit:
            leaks[path.name] = hit
    return leaks


def on_commit_losses(logs: Iterable[Path]) -> Counter:
    """Work a committed change meant to queue and could not ("Error calling X in
    on_commit()": robust callbacks log and go on), by callable."""
    found: Counter = Counter()
    for path in logs:
        if not path.exists():
            continue
        for line in path.read_text(errors="replace").splitlines():
            if m := re.search(
                r"Error calling (\S+) in on_commit\(\)[^(]*\((.{0,80})", line
            ):
                found[(path.stem, m.group(1), m.group(2))] += 1
    return found


def alerts_by_rule() -> Counter:
    """Monitoring alerts raised during the run, by rule and severity."""
    from apps.monitoring.models import Alert

    return Counter(
        f"{rule} ({severity})"
        for rule, severity in Alert.objects.values_list("rule", "severity")
    )
