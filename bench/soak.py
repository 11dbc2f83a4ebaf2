"""Soak: the production-shaped stack under a mixed load, with faults injected, then the
invariants (`make soak`). Exit 0 only when every invariant holds.

The stack is the Procfile's (gunicorn with `AMANAH_WEB_WORKERS`, Celery with
`AMANAH_WORKERS`, beat) on production settings (`DJANGO_DEBUG=0`, behind a TLS proxy:
every request says `X-Forwarded-Proto: https`), on a PostgreSQL database of its own
(`amanah_soak_<pid>`) and a redis-server of its own on a spare port (broker in database
0, the shared cache in 1; `--save "" --appendonly no`). `AMANAH_SOAK_BROKER=rabbitmq`
puts the broker on RabbitMQ instead, in a virtual host of its own. The soak starts the
Procfile's commands itself (bench/_soak_stack.py) so that it can kill and restart them.

Data: `AMANAH_SOAK_CUSTOMERS` (3,000) customers through the service, plus a canary
customer with values of its own; one in ten closed long ago and one in fifteen inactive
for years, due for disposal (five of them under a legal hold); staff (support agents on
the API and on the pages with an authenticator, delivery agents with deliveries, a
sender with `consent.query_audience`, a compliance officer on the API and one on the
pages with an authenticator) and customers who sign in.

Load: Locust (bench/_soak_users.py, in a process of its own) runs `AMANAH_SOAK_USERS`
(50) users for `AMANAH_SOAK_SECONDS` (300) after `AMANAH_SOAK_WARMUP` (20 s) of
sign-ins: support agents search, open cases, read, reveal three at once, change a
consent for the customer, close; staff on the customer pages; delivery agents reading
and calling through the signed relay webhook; customers switching consents on /me/ and
downloading receipts; a sender calling the audience API and a recipient's one-click
unsubscribe; a compliance officer who, with 20 to 40 s between reviews, acknowledges
the open monitoring alerts on the alerts page (every high one, then up to four others)
and dismisses them, which gives back the reveals a high alert suspended
(`AMANAH_ALERT_SUSPEND_ON_HIGH`). Until then the agent's reveals are refused with 403
`reveals_suspended`, a right answer (counted apart); any other 403 is not. The search
is `POST /api/v1/customers/search/`: the email or phone in the body, never in a URL.

During the run, at fixed points: the beat's monitoring job (twice; reveals queue their
own), a disposal run (the beat's `retention.purge_expired`, fanned out to the
workers), a breach with affected customers and its notices sent
(`POST .../notifications/`), and the faults: kill -9 of a gunicorn worker (its master
respawns it), of a Celery pool process (the worker respawns it), of the Celery worker
itself (restarted here, as a supervisor would), and a restart of the soak's Redis.
Then one tick of every beat job (the run is shorter than their periods: what the next
tick would do, sooner) and the background work drains (`AMANAH_SOAK_DRAIN`, 120 s at
most); the stack stops.

Checks: requests and requests/s; 5xx responses; deadlocks (PostgreSQL's count for the
database, its log lines and the apps' logs); consent state equal to a replay of the
ledger; `verify_audit_chain`; the disposal log equal to what was removed (and held
customers kept); every breach notice sent once, or failed (or waiting to retry) with
a reason, none due and unsent after the drain, no email sent twice (a counting mail
backend, bench/_soak_mail.py); no agent
above `AMANAH_REVEALS_PER_HOUR` in any hour; every `reveals_suspended` refusal the app
logged fell while an alert held that agent's reveals, and no reveal was granted to an
agent while one did; failed Celery tasks; and no canary value
in any log the stack wrote (gunicorn's, its access log, the workers', beat's, Redis's,
the mail log, PostgreSQL's lines for the database). The logs stay in
`bench/results/soak-<pid>/` (git-ignored). The database and the Redis are removed
however the run ends.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import contextlib
import json
import os
import random
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import _setup
import _soak_checks as checks
import _soak_stack as stack_
from _soak_checks import Line

# The soak's process loads data on its own database; tasks it queues while seeding run
# in-process, never on a broker or cache the shell happens to name.
for _name in ("CELERY_BROKER_URL", "CACHE_URL"):
    os.environ.pop(_name, None)
DB_NAME = _setup.configure_django(f"amanah_soak_{os.getpid()}")

from django.conf import settings
from django.contrib.auth.models import Permission
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.access.models import InteractionKind
from apps.access.services import interaction_open
from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.consent.models import Purpose
from apps.consent.services import consent_record
from apps.customers.models import Customer
from apps.customers.services import customer_create
from apps.incidents.services import affected_select
from apps.portal.services import customer_account_enable
from apps.retention.services import hold_place

SECONDS = float(os.environ.get("AMANAH_SOAK_SECONDS", "300"))
USERS = int(os.environ.get("AMANAH_SOAK_USERS", "50"))
CUSTOMERS = int(os.environ.get("AMANAH_SOAK_CUSTOMERS", "3000"))
WARMUP = float(os.environ.get("AMANAH_SOAK_WARMUP", "20"))
DRAIN = float(os.environ.get("AMANAH_SOAK_DRAIN", "120"))
BROKER = os.environ.get("AMANAH_SOAK_BROKER", "redis")
WEB_WORKERS = int(os.environ.get("AMANAH_WEB_WORKERS", "4"))
WORKERS = int(os.environ.get("AMANAH_WORKERS", "2"))
GOAL_USERS, GOAL_SECONDS, GOAL_FAULTS, GOAL_RPS = 50, 300, 3, 100
CORES = os.cpu_count() or 1
# What the CPU-per-request figures add up, by the processes measured.
CPU_PARTS = {
    "gunicorn": ("web",),
    "PostgreSQL": ("postgres",),
    "Celery": ("worker", "beat"),
    "Locust": ("locust",),
}
PASSWORD = "soak-password-2026-amanah"  # noqa: S105 - soak accounts, dropped after
RELAY_SECRET = _setup._fixed_key(b"amanah-soak-relay-secret")
# Share of the users per kind (the sender and the staff pages at least one each).
MIX = {"support": 0.40, "page": 0.10, "delivery": 0.14, "customer": 0.30}
DELIVERIES_EACH, PAGE_CUSTOMERS_EACH, HOT = 3, 4, 60
CANARY = {
    "country": "ID",
    "full_name": "Canary Vexwold Soak",
    "email": "canary.vexwold@soak-amanah.example",
    "phone": "+62 812-9977-0311",
    "address_line": "9 Canary Vexwold Lane",
    "city": "Jakarta",
    "national_id": "CANARY-SOAK-40417",
}
# What the logs are searched for: each value as written, as a URL carries it, and the
# phone as the app normalises it.
CANARY_NEEDLES = {
    "full_name": CANARY["full_name"],
    "email": CANARY["email"],
    "email (in a URL)": CANARY["email"].replace("@", "%40"),
    "phone": CANARY["phone"],
    "phone (E.164)": "+6281299770311",
    "phone (in a URL)": "%2B6281299770311",
    "phone (digits)": "6281299770311",
    "address_line": CANARY["address_line"],
    "national_id": CANARY["national_id"],
}


def user_mix(total: int) -> dict[str, int]:
    counts = {kind: max(1, round(total * share)) for kind, share in MIX.items()}
    counts["officer"] = 1  # the compliance officer handling the alerts
    counts["sender"] = max(1, total - sum(counts.values()))
    while sum(counts.values()) > total and counts["support"] > 1:
        counts["support"] -= 1
    return counts


# Data


@dataclass
class Seed:
    admin: Any
    compliance: Any
    canary: Customer
    accounts: dict[str, list[dict]]
    pool: list[dict]
    audience_ids: list[str]
    purposes: list[str]
    breach_ids: list[str]
    held: list[Any] = field(default_factory=list)


def customer_entry(customer: Customer) -> dict:
    return {"id": str(customer.pk), "email": customer.email, "phone": customer.phone}


def seed(users: dict[str, int]) -> Seed:
    now = timezone.now()
    _setup.customers_load(CUSTOMERS, start=now - timedelta(days=365))
    admin = user_ensure_staff(
        actor=None, username="soak-admin", role=Role.PRIVACY_ADMIN, password=PASSWORD
    )
    compliance = user_ensure_staff(
        actor=None,
        username="soak-compliance",
        role=Role.COMPLIANCE_OFFICER,
        password=PASSWORD,
    )
    canary = customer_create(actor=admin, data=CANARY)
    loaded = list(Customer.objects.exclude(pk=canary.pk).order_by("created_at"))
    closed_n, inactive_n = CUSTOMERS // 10, CUSTOMERS // 15
    active = loaded[: len(loaded) - closed_n - inactive_n]
    closed = loaded[len(active) : len(active) + closed_n]
    inactive = loaded[len(active) + closed_n :]
    Customer.objects.filter(pk__in=[c.pk for c in closed]).update(
        status="closed",
        closed_at=now - timedelta(days=800),
        last_activity_at=now - timedelta(days=800),
    )
    Customer.objects.filter(pk__in=[c.pk for c in inactive]).update(
        last_activity_at=now - timedelta(days=1200)
    )
    held = []
    for customer in closed[:5]:
        hold_place(
            actor=compliance,
            customer=customer,
            reason="Soak: chargeback dispute pending with the card network",
        )
        held.append(customer.pk)

    purposes = list(Purpose.objects.filter(active=True).values_list("code", flat=True))
    hot = active[:HOT]
    for customer in active[: max(HOT, len(active) // 3)]:
        consent_record(
            actor=None,
            customer=customer,
            purpose_code=random.choice(purposes),
            granted=True,
            source="self_service",
        )

    accounts: dict[str, list[dict]] = {kind: [] for kind in users}
    for n in range(users["support"]):
        user_ensure_staff(
            actor=None,
            username=f"soak-support-{n:02d}",
            role=Role.SUPPORT_AGENT,
            password=PASSWORD,
        )
        accounts["support"].append({"username": f"soak-support-{n:02d}"})
    for n in range(users["page"]):
        agent = user_ensure_staff(
            actor=None,
            username=f"soak-page-{n:02d}",
            role=Role.SUPPORT_AGENT,
            password=PASSWORD,
        )
        device = TOTPDevice.objects.create(
            user=agent, name="Authenticator app", confirmed=True
        )
        mine = ([canary] if n == 0 else []) + random.sample(hot, PAGE_CUSTOMERS_EACH)
        for customer in mine:
            interaction_open(
                actor=admin,
                staff=agent,
                customer=customer,
                kind=InteractionKind.SUPPORT_CASE,
            )
        accounts["page"].append(
            {
                "username": agent.username,
                "totp_key": device.key,
                "customers": [str(c.pk) for c in mine],
            }
        )
    for n in range(users["officer"]):
        officer = user_ensure_staff(
            actor=None,
            username=f"soak-officer-{n:02d}",
            role=Role.COMPLIANCE_OFFICER,
            password=PASSWORD,
        )
        device = TOTPDevice.objects.create(
            user=officer, name="Authenticator app", confirmed=True
        )
        accounts["officer"].append(
            {"username": officer.username, "totp_key": device.key}
        )
    for n in range(users["delivery"]):
        agent = user_ensure_staff(
            actor=None,
            username=f"soak-delivery-{n:02d}",
            role=Role.DELIVERY_AGENT,
            password=PASSWORD,
            work_phone=f"+6221509{n:05d}",
        )
        mine = ([canary] if n == 0 else []) + random.sample(active, DELIVERIES_EACH)
        deliveries = [
            interaction_open(
                actor=admin,
                staff=agent,
                customer=customer,
                kind=InteractionKind.DELIVERY,
            )
            for customer in mine
        ]
        accounts["delivery"].append(
            {
                "username": agent.username,
                "work_phone": agent.work_phone,
                "deliveries": [
                    {"customer": str(d.customer_id), "alias": d.contact_alias}
                    for d in deliveries
                ],
            }
        )
    for n in range(users["sender"]):
        sender = user_ensure_staff(
            actor=None,
            username=f"soak-sender-{n:02d}",
            role=Role.SUPPORT_AGENT,
            password=PASSWORD,
        )
        sender.user_permissions.add(Permission.objects.get(codename="query_audience"))
        accounts["sender"].append({"username": sender.username})
    for customer in [canary, *hot][: users["customer"]]:
        customer_account_enable(actor=admin, customer=customer, password=PASSWORD)
        accounts["customer"].append({"email": customer.email})

    # The breach touches some of the working set, the canary, and customers about to
    # be disposed of (their notices go out after they are gone).
    breach = [canary, *random.sample(active, min(1000, len(active)))]
    breach += [c for c in closed[5:] + inactive][:50]
    _setup.vacuum_analyze(
        "customers_customer",
        "crypto_datakey",
        "access_interaction",
        "access_customeruserobjectpermission",
        "consent_consentstate",
        "consent_consentevent",
    )
    return Seed(
        admin=admin,
        compliance=compliance,
        canary=canary,
        accounts=accounts,
        pool=[customer_entry(c) for c in active],
        audience_ids=[str(c.pk) for c in active],
        purposes=purposes,
        breach_ids=[str(c.pk) for c in breach],
        held=held,
    )


# The stack


def server_env(*, port: int, logs: Path, cache_url: str, broker_url: str) -> dict:
    """Production settings on the soak's database, Redis and keys."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_BEHIND_TLS_PROXY="1",
        DJANGO_LOG_LEVEL="INFO",
        AMANAH_RELAY_SECRET=RELAY_SECRET,
        AMANAH_PUBLIC_URL=f"https://127.0.0.1:{port}",
        AMANAH_ERASURE_JOURNAL=str(logs / "erasure-journal.jsonl"),
        CACHE_URL=cache_url,
        CELERY_BROKER_URL=broker_url,
        # Every API user signs in from this one address within seconds.
        AMANAH_TOKEN_RATE="10000/minute",  # noqa: S106 - a rate, not a password
        # Counted on every call as in production, never reached: the run measures the
        # work (tests/accounts/test_throttling.py holds the limit across processes).
        AMANAH_API_RATE="1000000/minute",
        DJANGO_EMAIL_BACKEND="bench._soak_mail.CountingEmailBackend",
        AMANAH_SOAK_MAIL_LOG=str(logs / "mail.log"),
        AMANAH_ALERT_EMAILS="compliance@soak-amanah.example",
        AMANAH_SOAK_MAIL_KEY=secrets.token_hex(16),
        AMANAH_BIND=f"127.0.0.1:{port}",
        AMANAH_WEB_WORKERS=str(WEB_WORKERS),
        AMANAH_WORKERS=str(WORKERS),
        AMANAH_ACCESS_LOG=str(logs / "gunicorn-access.log"),
        AMANAH_BEAT_SCHEDULE=str(logs / "celerybeat-schedule"),
        # Minutes, not the production quarter of an hour: a killed worker's messages
        # come back, and a notice claim it left is settled, within the run and drain.
        AMANAH_BROKER_VISIBILITY_TIMEOUT="60",
        AMANAH_TASK_TIME_LIMIT="30",
        PATH=f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        PYTHONPATH=str(_setup.ROOT),
        PYTHONUNBUFFERED="1",
        SOAK_PYTHON=sys.executable,
    )
    return env


class Api:
    """Plain HTTP to the served site, as the TLS proxy would pass it on."""

    def __init__(self, url: str) -> None:
        self.url, self.token = url, ""

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"X-Forwarded-Proto": "https", "Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Token {self.token}"
        request = urllib.request.Request(  # noqa: S310 - our own http URL
            self.url + path,
            data=None if body is None else json.dumps(body).encode(),
            headers=headers,
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
                raw = response.read()
                kind = response.headers.get("Content-Type", "")
                return response.status, json.loads(raw) if "json" in kind else None
        except urllib.error.HTTPError as exc:
            return exc.code, None

    def ready(self) -> bool:
        try:
            return self.call("GET", "/status/")[0] == 200
        except OSError:
            return False


class Soak:
    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.pg_offset = checks.pg_log_offset()
        self.data: Seed | None = None
        self.redis: stack_.Redis | None = None
        self.stack: stack_.Stack | None = None
        self.api: Api | None = None
        self.env: dict[str, str] = {}
        self.broker_url = self.vhost = ""
        self.dead: list[str] = []
        self.t0 = time.monotonic()
        self.locust_pid = 0
        self.cpu: dict[str, float] = {}  # CPU seconds while measured, per part
        self.cpu_gone: dict[str, float] = {}  # of processes killed, when killed
        self.backends = stack_.BackendCpu(DB_NAME)
        self.events: list[tuple[float, str, str, bool]] = []  # (t, what, outcome, ok)
        self.faults = 0
        self.incident_id = None
        self.disposal_snapshot: dict | None = None
        self.started = timezone.now()

    # Helpers the timeline uses.

    def send_task(self, name: str) -> None:
        from celery import Celery

        app = Celery("soak", broker=self.broker_url)
        try:
            app.send_task(name)
        finally:
            app.close()

    def backlog(self) -> int:
        if BROKER == "rabbitmq":
            return stack_.rabbitmq_backlog(self.vhost)
        try:
            client = self.redis.client(0)
            return int(client.llen("celery")) + int(client.hlen("unacked"))
        except Exception:
            return -1

    def respawned(self, master: int, victim: int, count: int) -> float:
        def back() -> bool:
            now = stack_.children_of(master)
            return victim not in now and len(now) >= count

        return stack_.wait_for(back, seconds=60, what="no respawn")

    def cpu_snapshot(self) -> dict[str, float]:
        """CPU seconds so far of each part of the stack and of Locust (a killed
        gunicorn worker's or pool process's stays with its master; a killed Celery
        worker's was noted when it was killed)."""
        snap = {
            name: stack_.cpu_seconds(process.pid) + self.cpu_gone.get(name, 0.0)
            for name, process in self.stack.processes.items()
        }
        snap["locust"] = stack_.cpu_seconds(self.locust_pid)
        return snap

    # The timeline.

    def monitoring_job(self) -> str:
        self.send_task("monitoring.evaluate_rules")
        return "monitoring.evaluate_rules queued (the beat's 5-minute job)"

    def kill_gunicorn_worker(self) -> str:
        master = self.stack.processes["web"].pid
        before = set(stack_.children_of(master))
        victim = random.choice(sorted(before))
        os.kill(victim, signal.SIGKILL)
        self.faults += 1
        took = self.respawned(master, victim, WEB_WORKERS)
        return f"kill -9 gunicorn worker {victim}; master respawned it in {took:.1f} s"

    def kill_pool_process(self) -> str:
        master = self.stack.processes["worker"].pid
        before = set(stack_.children_of(master))
        victim = random.choice(sorted(before))
        os.kill(victim, signal.SIGKILL)
        self.faults += 1
        took = self.respawned(master, victim, WORKERS)
        return f"kill -9 Celery pool process {victim}; replaced in {took:.1f} s"

    def kill_worker(self) -> str:
        process = self.stack.processes["worker"]
        victim = process.pid
        self.cpu_gone["worker"] = stack_.cpu_seconds(victim)
        process.kill_hard()
        self.faults += 1
        log = self.logs / "worker.log"
        offset = stack_.size_of(log)
        time.sleep(1.0)
        self.stack.start("worker")
        took = stack_.wait_for(
            lambda: stack_.log_has(log, " ready.", after=offset),
            seconds=90,
            what="the restarted worker was not ready",
        )
        return f"kill -9 Celery worker {victim}; restarted, ready in {took:.1f} s"

    def restart_redis(self) -> str:
        started = time.monotonic()
        self.redis.crash_and_restart(down_seconds=2.0)
        self.faults += 1
        took = time.monotonic() - started
        return f"kill -9 of the soak's Redis; up again (empty) after {took:.1f} s"

    def breach(self) -> str:
        status, body = self.api.call(
            "POST",
            "/api/v1/incidents/",
            {
                "title": "Soak: support mailbox exposed",
                "kind": "breach",
                "severity": "high",
                "detected_at": (timezone.now() - timedelta(hours=2)).isoformat(),
                "aware_at": (timezone.now() - timedelta(hours=1)).isoformat(),
                "data_categories": ["contact"],
                "risk_level": "high",
                "what_happened": "A support mailbox was reachable without a password.",
                "what_we_are_doing": "We closed it and checked who opened it.",
                "what_you_can_do": "Be careful with messages that ask for codes.",
                "contact": "privacy@amanah.example",
                "remedy_kind": "voucher",
                "remedy_description": "A voucher for your next order",
            },
        )
        if status != 201:
            raise RuntimeError(f"POST /api/v1/incidents/: HTTP {status}")
        self.incident_id = body["id"]
        from apps.incidents.models import Incident

        count = affected_select(
            actor=self.data.compliance,
            incident=Incident.objects.get(pk=self.incident_id),
            scope="list",
            customer_ids=" ".join(self.data.breach_ids),
        )
        return f"breach registered (API); {count} affected customers selected"

    def disposal(self) -> str:
        self.disposal_snapshot = checks.disposal_snapshot()
        self.send_task("retention.purge_expired")
        due = len(self.disposal_snapshot["due"])
        return f"retention.purge_expired queued (the beat's job); {due} customers due"

    def notify(self) -> str:
        status, body = self.api.call(
            "POST", f"/api/v1/incidents/{self.incident_id}/notifications/"
        )
        if status != 202:
            raise RuntimeError(f"POST .../notifications/: HTTP {status}")
        return f"breach notices queued and handed to the workers: {body['total']}"

    def run_timeline(self, start: float) -> None:
        timeline = [
            (0.10, "monitoring", self.monitoring_job),
            (0.20, "fault", self.kill_gunicorn_worker),
            (0.25, "breach", self.breach),
            (0.30, "disposal", self.disposal),
            (0.40, "fault", self.kill_pool_process),
            (0.50, "notices", self.notify),
            (0.55, "fault", self.kill_worker),
            (0.70, "fault", self.restart_redis),
            (0.80, "monitoring", self.monitoring_job),
        ]
        self.t0 = start
        time.sleep(max(0.0, start - time.monotonic()))
        self.cpu = self.cpu_snapshot()  # the measurement starts
        self.backends.start()
        for share, what, action in timeline:
            delay = start + share * SECONDS - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            at = time.monotonic() - start
            try:
                outcome, ok = action(), True
            except Exception as exc:
                outcome, ok = f"{what} failed: {type(exc).__name__}: {exc}", False
            self.events.append((at, what, outcome, ok))
            print(f"  {at:6.1f} s  {outcome}", flush=True)

    def drain(self) -> tuple[bool, float, str]:
        """Wait until the broker holds nothing, no notice is due and no disposal
        run is running, three polls in a row."""
        from apps.retention.models import DisposalRun

        # The run is shorter than the beat's periods (5 minutes, a day): one tick of
        # every periodic job now, as the next tick would, resumes what a lost message
        # left (notices due, an unfinished disposal run).
        jobs = sorted({job["task"] for job in settings.CELERY_BEAT_SCHEDULE.values()})
        for name in jobs:
            self.send_task(name)
        self.events.append(
            (
                time.monotonic() - self.t0,
                "beat",
                f"drain: one beat tick ({', '.join(jobs)})",
                True,
            )
        )
        start, calm = time.monotonic(), 0
        state = ""
        while time.monotonic() - start < DRAIN:
            backlog = self.backlog()
            due = checks.notices_due_count()
            running = DisposalRun.objects.filter(
                status="running", started_at__gte=self.started
            ).count()
            state = (
                f"broker backlog {backlog}, notices due {due}, "
                f"disposal runs running {running}"
            )
            calm = calm + 1 if (backlog, due, running) == (0, 0, 0) else 0
            if calm >= 3:
                return True, time.monotonic() - start, state
            time.sleep(1.0)
        return False, time.monotonic() - start, state


def drive(soak: Soak, plan: dict) -> dict:
    """Locust in its own process while the timeline runs here; its results."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(plan, f)
        f.flush()
        with (soak.logs / "locust.log").open("wb") as err:
            locust = subprocess.Popen(  # noqa: S603 - fixed arguments
                [sys.executable, "-m", "bench._soak_users", f.name],
                cwd=_setup.ROOT,
                stdout=subprocess.PIPE,
                stderr=err,
            )
            out: list[bytes] = []
            reader = threading.Thread(
                target=lambda: out.append(locust.stdout.read()), daemon=True
            )
            reader.start()
            try:
                soak.locust_pid = locust.pid
                soak.run_timeline(time.monotonic() + WARMUP + 2.0)
                # Its summary comes within a second of the end: measure up to it.
                time.sleep(max(0.0, soak.t0 + SECONDS - time.monotonic()))
                end = soak.cpu_snapshot()
                soak.cpu = {k: end[k] - soak.cpu.get(k, 0.0) for k in end}
                soak.cpu["postgres"] = soak.backends.stop()
                locust.wait(timeout=WARMUP + SECONDS + 180)
            finally:
                if locust.poll() is None:
                    locust.kill()
                    locust.wait()
            reader.join(timeout=10)
    text = b"".join(out).decode().strip()
    if locust.returncode != 0 or not text:
        tail = (soak.logs / "locust.log").read_text(errors="replace")[-3000:]
        sys.stderr.write(tail)
        raise SystemExit(f"Locust exited with status {locust.returncode}")
    return json.loads(text.splitlines()[-1])


# The report


def must(measurement: str, value: object, goal: str, ok: bool) -> Line:
    return Line(measurement, str(value), goal, ok, invariant=True)


def aim(measurement: str, value: object, goal: str, ok: bool) -> Line:
    return Line(measurement, str(value), goal, ok)


def note(measurement: str, value: object) -> Line:
    return Line(measurement, str(value))


SERVER_LOGS = (
    "web.log",
    "gunicorn-access.log",
    "worker.log",
    "beat.log",
    "redis.log",
    "mail.log",
    "postgresql.log",
)


def report(soak: Soak, results: dict, drained: tuple[bool, float, str]) -> bool:
    """Print the table (goals, invariants, what explains them) and the findings;
    True when every invariant holds."""
    logs = soak.logs
    statuses = Counter({(name, status): n for name, status, n in results["statuses"]})
    requests, seconds = results["requests"], results["seconds"]
    rps = requests / seconds if seconds else 0.0

    def cpu_ms(part: str) -> float:
        seconds = sum(v for k, v in soak.cpu.items() if k in CPU_PARTS[part])
        return 1000 * seconds / requests if requests else 0.0

    total_ms = sum(cpu_ms(part) for part in CPU_PARTS)
    errors = sum(n for (_, s), n in statuses.items() if s >= 500)
    dropped = sum(n for (_, s), n in statuses.items() if s == 0)
    odd = sum(n for _, s, n in results["unexpected"] if 0 < s < 500)
    kills = sum(1 for *_, outcome, _ok in soak.events if "gunicorn worker" in outcome)
    app_logs = [logs / "web.log", logs / "worker.log"]
    deadlock_entries = checks.pg_log_extract(
        DB_NAME, soak.pg_offset, logs / "postgresql.log"
    )
    (logs / "deadlocks.log").write_text("\n\n".join(deadlock_entries))
    deadlocks = (
        checks.deadlock_count(DB_NAME),
        len(deadlock_entries),
        checks.mentions(app_logs, "deadlock detected"),
    )
    consent = checks.consent_replay()
    mismatches = consent["differ"] + consent["no_state"]
    chain_ok, chain_says = checks.audit_chain(soak.env, _setup.ROOT)
    limit = settings.AMANAH_REVEALS_PER_HOUR
    peaks = checks.reveal_peaks()
    peak = peaks[0][1] if peaks else 0
    tasks = checks.task_outcomes(logs / "worker.log")
    failed = sum(tasks["failed"].values())
    lost = checks.on_commit_losses(app_logs)
    leaks = checks.canary_leaks([logs / n for n in SERVER_LOGS], CANARY_NEEDLES)
    canary_seen = checks.mentions(
        [logs / "gunicorn-access.log"], str(soak.data.canary.pk)
    )
    done = sum(ok for *_, ok in soak.events)
    signed = sum(results["signed_in"].values())

    lines = [
        aim("users", USERS, f"{GOAL_USERS}", USERS >= GOAL_USERS),
        aim(
            "seconds under load",
            f"{seconds:.0f}",
            f"{GOAL_SECONDS}",
            seconds >= GOAL_SECONDS - 1,
        ),
        note("requests", requests),
        note(
            "CPU ms per request: gunicorn / PostgreSQL / Celery / Locust",
            " / ".join(f"{cpu_ms(part):.1f}" for part in CPU_PARTS),
        ),
        note(
            f"requests/s that CPU allows on {CORES} idle cores",
            f"{CORES * 1000 / total_ms:.0f}" if total_ms else "-",
        ),
        aim("requests/s", f"{rps:.1f}", f"≥ {GOAL_RPS}", rps >= GOAL_RPS),
        aim(
            "faults injected",
            soak.faults,
            f"≥ {GOAL_FAULTS}",
            soak.faults >= GOAL_FAULTS,
        ),
        must("users signed in", f"{signed}/{USERS}", "all", signed == USERS),
        must(
            "scheduled events done",
            f"{done}/{len(soak.events)}",
            "all",
            done == len(soak.events),
        ),
        must(
            "processes that died on their own",
            ", ".join(soak.dead) or "none",
            "none",
            not soak.dead,
        ),
        must("server errors (5xx)", errors, "0", errors == 0),
        must(
            "dropped connections (the killed gunicorn worker's)",
            dropped,
            f"≤ {kills}",
            dropped <= kills,
        ),
        must("other unexpected responses", odd, "0", odd == 0),
        must(
            "deadlocks: pg_stat_database / PostgreSQL log / app logs",
            " / ".join(map(str, deadlocks)),
            "0 / 0 / 0",
            deadlocks == (0, 0, 0),
        ),
        must(
            "background work drained after the load",
            f"{'yes' if drained[0] else 'no'} ({drained[1]:.0f} s)",
            "yes",
            drained[0],
        ),
        must(
            "consent state = replay of the ledger (mismatches)",
            f"{mismatches} of {consent['pairs']}",
            "0",
            mismatches == 0,
        ),
        must(
            "audit chain (verify_audit_chain)",
            "intact" if chain_ok else chain_says[:60],
            "exit 0",
            chain_ok,
        ),
        must(
            f"reveals granted to one agent in an hour (max of {len(peaks)})",
            peak,
            f"≤ {limit}",
            peak <= limit,
        ),
        must("failed Celery tasks (worker log)", failed, "0", failed == 0),
        note("work not queued after a commit (broker down)", sum(lost.values())),
        must(
            "requests about the canary (access log lines with its id)",
            canary_seen,
            "> 0",
            canary_seen > 0,
        ),
        must(
            "canary values in the stack's logs",
            sum(map(len, leaks.values())),
            "0",
            not leaks,
        ),
    ]
    lines += suspension_lines(results, logs / "web.log")
    lines += disposal_lines(soak)
    notices = (
        checks.notices_result(
            soak.incident_id,
            mail_log=logs / "mail.log",
            mail_key=soak.env["AMANAH_SOAK_MAIL_KEY"],
        )
        if soak.incident_id
        else None
    )
    lines += notice_lines(notices)
    succeeded = tasks["succeeded"]
    alerts = checks.alerts_by_rule()
    lines += [
        note("monitoring: alerts raised", sum(alerts.values())),
        note(
            "monitoring: rule runs (beat job / after reveals)",
            f"{succeeded['monitoring.evaluate_rules']} / "
            f"{succeeded['monitoring.evaluate_for_staff']}",
        ),
        note(
            "Celery: tasks retried / lost with a killed process",
            f"{sum(tasks['retried'].values())} / {sum(tasks['lost'].values())}",
        ),
    ]
    checks.print_lines(lines)
    held = all(line.ok is not False for line in lines if line.invariant)
    goals = all(line.ok is not False for line in lines if not line.invariant)
    print(f"goals met: {'yes' if goals else 'no'}")
    print(f"all invariants hold: {'yes' if held else 'no'}")
    findings(results, soak, leaks, deadlock_entries, tasks, notices, lost, alerts)
    return held


def suspension_lines(results: dict, web_log: Path) -> list[Line]:
    """Reveals refused while an alert holds an agent's reveals: right answers, each
    while such an alert held them, and no reveal granted while one did."""
    seen = sum(n for _, code, n in results["refused"] if code == "reveals_suspended")
    s = checks.suspension_result(web_log)
    return [
        note("reveals refused: an alert holds the agent's reveals", seen),
        must(
            "refusals the app logged (run and warm-up) / of them outside an alert's "
            "hold on the agent",
            f"{s['logged']} / {s['outside']}",
            f"≥ {seen} / 0",
            s["logged"] >= seen and s["outside"] == 0,
        ),
        must(
            "reveals granted while an alert held the agent's reveals",
            s["granted_while_held"],
            "0",
            s["granted_while_held"] == 0,
        ),
        note(
            "monitoring: alerts that suspended reveals / lifted by the officer",
            f"{s['holding_alerts']} / {s['lifted']}",
        ),
    ]


def disposal_lines(soak: Soak) -> list[Line]:
    if soak.disposal_snapshot is None:
        return [must("disposal run", "did not start", "ran", False)]
    d = checks.disposal_result(soak.disposal_snapshot, since=soak.started)
    runs = ", ".join(f"#{pk} {status}" for pk, status in d["runs"]) or "none"
    completed = bool(d["runs"]) and all(s == "completed" for _, s in d["runs"])
    equal = (
        d["log_mismatch"] == d["progress_mismatch"] == 0 and d["logged"] == d["removed"]
    )
    wrong = (d["not_due_removed"], d["due_kept"], d["held_removed"])
    return [
        must("disposal runs completed", runs, "completed", completed),
        must(
            "disposal log = customers SQL removed",
            f"{d['logged']} = {d['removed']} (due {d['due']})",
            "equal",
            equal,
        ),
        must(
            "disposal: not due but removed / due but kept / held removed",
            " / ".join(map(str, wrong)),
            "0 / 0 / 0",
            wrong == (0, 0, 0),
        ),
    ]


def notice_lines(n: dict | None) -> list[Line]:
    if n is None:
        return [must("breach notices", "not sent", "sent", False)]
    by_status = ", ".join(f"{k} {v}" for k, v in sorted(n["by_status"].items()))
    unreasoned = (n["failed_without_reason"], n["sent_without_time"])
    mail = (
        n["emails_sent_twice"],
        n["emails_marked_sent_never_mailed"],
        n["emails_mailed_not_marked_sent"],
    )
    return [
        note("breach notices", f"{n['total']} ({by_status})"),
        must(
            "notices due or claimed but not settled after the drain",
            n["due"],
            "0",
            n["due"] == 0,
        ),
        must(
            "notices failed or retrying without a reason / sent without a time",
            " / ".join(map(str, unreasoned)),
            "0 / 0",
            unreasoned == (0, 0),
        ),
        note(
            "notices whose sender died mid-send (failed: outcome unknown)",
            n["outcome_unknown"],
        ),
        must(
            "notice emails: sent twice / marked sent, not mailed / mailed, "
            "neither sent nor outcome unknown",
            " / ".join(map(str, mail)),
            "0 / 0 / 0",
            mail == (0, 0, 0),
        ),
    ]


def findings(
    results, soak, leaks, deadlock_entries, tasks, notices, lost, alerts
) -> None:
    """The events, then what to look at: counts by endpoint, exception and task, no
    PII; then each request's figures."""
    logs = soak.logs
    out: list[str] = []
    for name, status, n in sorted(results["unexpected"], key=lambda r: -r[2]):
        out.append(f"{n:6d} x HTTP {status or 'no response'} on '{name}'")
    for (path, error), n in checks.web_errors(logs / "web.log").most_common(10):
        out.append(f"{n:6d} x 500 at {path}: {error or '(see web.log)'}")
    for (task, error), n in tasks["failed"].most_common(10):
        out.append(f"{n:6d} x task {task} failed: {error}")
    for (task, why), n in tasks["retried"].most_common(5):
        out.append(f"{n:6d} x task {task} retried: {why}")
    for why, n in tasks["lost"].most_common(3):
        out.append(f"{n:6d} x {why}")
    for (log, what, why), n in lost.most_common(5):
        out.append(f"{n:6d} x {log}: {what} not queued after commit: {why}")
    if deadlock_entries:
        out.append(f"{len(deadlock_entries)} deadlock(s), in deadlocks.log; first:")
        out += ["    " + line[:200] for line in deadlock_entries[0].splitlines()[:8]]
    for file, fields in leaks.items():
        out.append(f"canary {', '.join(fields)} found in {file}")
    if notices:
        for reason, n in notices["failed_reasons"].most_common(3):
            out.append(f"{n:6d} notices failed: {reason}")
    print("\nevents:")
    for at, _what, outcome, ok in soak.events:
        print(f"  {at:6.1f} s  {'' if ok else 'FAILED: '}{outcome}")
    if alerts:
        print("alerts: " + ", ".join(f"{k} {v}" for k, v in sorted(alerts.items())))
    if out:
        print("findings:")
        print("\n".join("  " + line for line in out))
    print("\nper request: count, per second, p50 and p99 (ms), failures")
    for name, e in sorted(results["names"].items()):
        print(
            f"  {name:48s} {e['requests']:7d} {e['rps']:6.1f}/s "
            f"{e['p50']:6.0f} {e['p99']:6.0f} {e['failures']:5d}"
        )
    print(f"logs: {logs}")


def main() -> None:
    users = user_mix(USERS)
    logs = _setup.ROOT / "bench" / "results" / f"soak-{os.getpid()}"
    logs.mkdir(parents=True, exist_ok=True)
    soak = Soak(logs)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(_setup.bench_database(DB_NAME))
        print(_setup.machine_context())
        started = time.monotonic()
        soak.data = seed(users)
        print(
            f"data: {CUSTOMERS:,} customers and a canary in "
            f"{time.monotonic() - started:.0f} s; users: {users}"
        )
        soak.redis = stack_.Redis(logs).start()
        cleanup.callback(soak.redis.stop)
        if BROKER == "rabbitmq":
            soak.vhost = f"amanah_soak_{os.getpid()}"
            soak.broker_url = cleanup.enter_context(stack_.rabbitmq_vhost(soak.vhost))
        else:
            soak.broker_url = soak.redis.url(0)
        port = stack_.free_port()
        soak.env = server_env(
            port=port,
            logs=logs,
            cache_url=soak.redis.url(1),
            broker_url=soak.broker_url,
        )
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=_setup.ROOT,
            env=soak.env,
            check=True,
        )
        soak.stack = stack_.Stack(env=soak.env, logs=logs)
        cleanup.callback(soak.stack.stop_all)
        for name in ("web", "worker", "beat"):
            soak.stack.start(name)
        soak.api = Api(f"http://127.0.0.1:{port}")
        try:
            stack_.wait_for(soak.api.ready, seconds=90, what="gunicorn did not answer")
            stack_.wait_for(
                lambda: stack_.log_has(logs / "worker.log", " ready."),
                seconds=90,
                what="the Celery worker was not ready",
            )
        except TimeoutError as exc:
            raise SystemExit(f"{exc} (logs: {logs})") from None
        status, body = soak.api.call(
            "POST",
            "/api/v1/auth/token/",
            {"username": "soak-compliance", "password": PASSWORD},
        )
        if status != 200:
            raise SystemExit(f"compliance token sign-in: HTTP {status}")
        soak.api.token = body["token"]
        print(
            f"stack: {soak.api.url}, gunicorn x{WEB_WORKERS}, Celery x{WORKERS} and "
            f"beat on {BROKER}; {USERS} users for {SECONDS:.0f} s after {WARMUP:.0f} s "
            "of sign-ins"
        )
        pool = soak.data.pool
        plan = {
            "host": soak.api.url,
            "origin": soak.api.url.replace("http://", "https://"),
            "users": users,
            "seconds": SECONDS,
            "warmup": WARMUP,
            "password": PASSWORD,
            "relay_secret": RELAY_SECRET,
            "accounts": soak.data.accounts,
            "pool": pool,
            "hot": min(HOT, len(pool)),
            "canary": customer_entry(soak.data.canary),
            "purposes": soak.data.purposes,
            "audience_ids": soak.data.audience_ids,
        }
        results = drive(soak, plan)
        drained = soak.drain()
        soak.dead = soak.stack.dead()
        soak.stack.stop_all()
        soak.redis.stop()
        time.sleep(1.5)  # backends report their statistics as they exit
        print()
        ok = report(soak, results, drained)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        # main() has stopped what it started and dropped its database by now.
        sys.exit("soak: interrupted (its database, Redis and processes are gone)")
