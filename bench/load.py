"""Load: the staff customer page and the consent API under gunicorn on PostgreSQL.

gunicorn serves Amanah (config.wsgi's Django application, plus the two comparison
routes of bench/_load_app.py) with 4 sync workers on 127.0.0.1 (a free port), on
production settings (`DJANGO_DEBUG=0`, secure cookies, HSTS, the HTTPS
redirect; `DJANGO_BEHIND_TLS_PROXY=1`, and every request says `X-Forwarded-Proto:
https`, as a TLS proxy in front would). Locust (headless, as a library, in a process of
its own: bench/_load_users.py) runs 50 users for `BENCH_LOAD_SECONDS` (60) after a
warm-up: 25 support agents who signed in with password and authenticator code and open
their assigned customers' pages, 25 API clients reading those customers' consents with
a token. Each user waits 0.1-0.3 s between requests, as a person reading would.

The same users then run the same time against the naive path (the same customer, masked
and rendered the same way, without need-to-know checks and access log: see
bench/_load_app.py) and against the floor (an empty view behind the same middleware).
Goal on a 2-core machine: at least 100 requests per second, p99 under 500 ms, no
errors. Creates `amanah_bench_<pid>` and drops only that database, and stops the
gunicorn it started, however the run ends. `collectstatic` fills `staticfiles/`
(git-ignored), which production settings serve from. `BENCH_LOAD_SECONDS=10` for a
quick check; `BENCH_LOAD_WARMUP` (15 s) covers the 50 sign-ins.
"""
# ruff: noqa: E402 - Django must be configured before the models are imported.

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta

import _setup
from _setup import Row

DB_NAME = _setup.configure_django()

from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.access.models import InteractionKind
from apps.access.services import interaction_open
from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.consent.services import consent_record
from apps.customers.models import Customer

SECONDS = float(os.environ.get("BENCH_LOAD_SECONDS", "60"))
WARMUP = float(os.environ.get("BENCH_LOAD_WARMUP", "15"))
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
USERS = 50
WORKERS = 4
ASSIGNED_EACH = 4
PASSWORD = "bench-load-password-2026"  # noqa: S105 - bench accounts, dropped after
PAGE, API = "staff customer page", "consent API"
PHASES = [("ours", WARMUP), ("naive", 5.0), ("floor", 5.0)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """Production settings on the bench database, with the bench's own keys."""
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.base",
        DJANGO_DEBUG="0",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_BEHIND_TLS_PROXY="1",
        AMANAH_RELAY_SECRET=_setup._fixed_key(b"amanah-bench-relay-secret"),
        DJANGO_LOG_LEVEL="WARNING",
        # The 25 API clients sign in from one address in the same second.
        AMANAH_TOKEN_RATE="10000/minute",  # noqa: S106 - a rate, not a password
    )
    env.pop("CELERY_BROKER_URL", None)
    return env


def seed() -> list[dict]:
    """50 support agents, each with an authenticator and 4 open support cases among
    the bench customers, each customer with one consent given."""
    admin = user_ensure_staff(
        actor=None, username="bench-admin", role=Role.PRIVACY_ADMIN, password=PASSWORD
    )
    customers = list(Customer.objects.order_by("pk")[: USERS * ASSIGNED_EACH])
    agents = []
    for n in range(USERS):
        agent = user_ensure_staff(
            actor=None,
            username=f"bench-agent-{n:02d}",
            role=Role.SUPPORT_AGENT,
            password=PASSWORD,
            work_phone=f"+6221509{n:05d}",
        )
        device = TOTPDevice.objects.create(
            user=agent, name="Authenticator app", confirmed=True
        )
        mine = customers[n * ASSIGNED_EACH : (n + 1) * ASSIGNED_EACH]
        for customer in mine:
            interaction_open(
                actor=admin,
                staff=agent,
                customer=customer,
                kind=InteractionKind.SUPPORT_CASE,
            )
            consent_record(
                actor=None,
                customer=customer,
                purpose_code="marketing_sms",
                granted=True,
                source="self_service",
            )
        agents.append(
            {
                "username": agent.username,
                "totp_key": device.key,
                "customers": [str(c.pk) for c in mine],
            }
        )
    return agents


class Gunicorn:
    """gunicorn on 127.0.0.1, started and stopped (only it) by this benchmark."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def __enter__(self) -> "Gunicorn":
        self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
            [
                os.path.join(os.path.dirname(sys.executable), "gunicorn"),
                "bench._load_app:application",
                f"--bind=127.0.0.1:{self.port}",
                f"--workers={WORKERS}",
                "--backlog=2048",
                "--log-level=warning",
                "--timeout=60",
            ],
            cwd=_setup.ROOT,
            env=server_env(),
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(
                    f"gunicorn exited with status {self.process.returncode}"
                )
            try:
                request = urllib.request.Request(  # noqa: S310 - our own http URL
                    f"{self.url}/status/", headers={"X-Forwarded-Proto": "https"}
                )
                with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.__exit__()
        raise SystemExit("gunicorn did not answer within 60 s")

    def __exit__(self, *exc) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # graceful: workers finish and exit
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def drive(url: str, agents: list[dict]) -> dict:
    """Locust in its own process over every phase; its results."""
    plan = {
        "host": url,
        "origin": url.replace("http://", "https://"),
        "users": USERS,
        "seconds": SECONDS,
        "phases": PHASES,
        "password": PASSWORD,
        "agents": agents,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(plan, f)
        f.flush()
        budget = sum(w for _, w in PHASES) + SECONDS * len(PHASES) + 120
        done = subprocess.run(  # noqa: S603 - fixed arguments
            [sys.executable, "-m", "bench._load_users", f.name],
            cwd=_setup.ROOT,
            capture_output=True,
            text=True,
            timeout=budget,
            check=False,
        )
    if done.returncode != 0 or not done.stdout.strip():
        sys.stderr.write(done.stderr[-4000:])
        raise SystemExit(f"Locust exited with status {done.returncode}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def rows(results: dict) -> list[Row]:
    ours, naive, floor = (results[name] for name, _ in PHASES)
    out = [
        Row(
            f"all: requests/s ({USERS} users)",
            ours["all"]["rps"],
            naive["all"]["rps"],
            floor["all"]["rps"],
            goal="≥ 100",
            ok=ours["all"]["rps"] >= 100,
            naive_label="naive",
            raw_label="floor",
            higher_is_better=True,
        ),
        Row(
            "all: p99 (ms)",
            ours["all"]["p99"],
            naive["all"]["p99"],
            floor["all"]["p99"],
            goal="< 500",
            ok=ours["all"]["p99"] < 500,
            naive_label="naive",
            raw_label="floor",
            fmt="{:.0f}",
        ),
        Row(
            "all: errors",
            ours["all"]["errors"],
            naive["all"]["errors"],
            floor["all"]["errors"],
            goal="0",
            ok=ours["all"]["errors"] == 0,
            naive_label="naive",
            raw_label="floor",
            fmt="{:.0f}",
        ),
    ]
    for endpoint in (PAGE, API):
        o, n, f = ours[endpoint], naive[endpoint], floor[endpoint]
        out.append(
            Row(
                f"{endpoint}: requests/s",
                o["rps"],
                n["rps"],
                f["rps"],
                goal="(explains all)",
                ok=None,
                naive_label="naive",
                raw_label="floor",
                higher_is_better=True,
            )
        )
        for key in ("p50", "p95", "p99"):
            out.append(
                Row(
                    f"{endpoint}: {key} (ms)",
                    o[key],
                    n[key],
                    f[key],
                    goal="< 500" if key == "p99" else "(explains all)",
                    ok=o[key] < 500 if key == "p99" else None,
                    naive_label="naive",
                    raw_label="floor",
                    fmt="{:.0f}",
                )
            )
        out.append(
            Row(
                f"{endpoint}: errors",
                o["errors"],
                n["errors"],
                f["errors"],
                goal="0",
                ok=o["errors"] == 0,
                naive_label="naive",
                raw_label="floor",
                fmt="{:.0f}",
            )
        )
    return out


def main() -> None:
    with _setup.bench_database(DB_NAME):
        print(_setup.machine_context())
        load = _setup.customers_load(
            CUSTOMERS, start=timezone.now() - timedelta(days=365)
        )
        agents = seed()
        _setup.vacuum_analyze(
            "customers_customer",
            "crypto_datakey",
            "access_interaction",
            "access_customeruserobjectpermission",
            "consent_consentstate",
        )
        print(
            f"data: {CUSTOMERS:,} customers loaded in {load:.1f} s; {USERS} support "
            f"agents with an authenticator and {ASSIGNED_EACH} open cases each"
        )
        # Production settings serve static files from the manifest WhiteNoise reads.
        env = server_env()
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"],
            cwd=_setup.ROOT,
            env=env,
            check=True,
        )
        with Gunicorn() as server:
            print(
                f"server: gunicorn, {WORKERS} sync workers at {server.url}; load: "
                f"{USERS} users (half pages, half API) for {SECONDS:.0f} s per path "
                f"after {WARMUP:.0f} s of sign-in and warm-up"
            )
            results = drive(server.url, agents)
        signed = results["signed_in"]
        if signed != {"page": USERS // 2, "api": USERS - USERS // 2}:
            raise SystemExit(f"not every user signed in: {signed}")
        print()
        _setup.print_table(rows(results))


if __name__ == "__main__":
    main()
