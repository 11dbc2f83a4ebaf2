"""Load: the staff customer page and the consent API under gunicorn on PostgreSQL.

gunicorn serves Amanah (config.wsgi's Django application, plus the two comparison
routes of bench/_load_app.py) with 4 sync workers (production's default) on 127.0.0.1
(a free port), on production settings (`DJANGO_DEBUG=0`, secure cookies, HSTS, the HTTPS
redirect; `DJANGO_BEHIND_TLS_PROXY=1`, and every request says `X-Forwarded-Proto:
https`, as a TLS proxy in front would; `CACHE_URL` is Redis database 9 on 127.0.0.1,
`BENCH_CACHE_URL` to change it, emptied before and after the run). Locust (headless,
as a library, in a process of its own: bench/_load_users.py) runs 50 users: 25 support
agents who sign in with password and authenticator code and open their assigned
customers' pages, 25 API clients reading those customers' consents with a token. Each
user waits 0.1-0.3 s between requests, as a person reading would.

The same users, with the same waits on the same machine, load three paths: ours, the
naive one (the same customer, masked and rendered the same way, without need-to-know
checks and access log: see bench/_load_app.py) and the floor (an empty view behind the
same middleware). Sign-in (50 Argon2 checks) ends before anything is measured; each
path then gets `BENCH_LOAD_WARMUP` (5 s) unmeasured, and `BENCH_LOAD_SECONDS` (60) of
measurement per path is split into `BENCH_LOAD_ROUNDS` (3) rounds that measure every
path in turn, each round starting with the next path, so that a burst elsewhere on the
machine lands on one round of one path, and each round shows it.

Goals (issue #14), on a 2-core machine: in every round our requests per second at least
the naive path's divided by 1.3, and our p99 under 300 ms; no errors. Each round's
ratio and p99 are printed above the table, which adds up all rounds. Besides requests/s
and percentiles, the table shows the server's CPU per request (gunicorn workers and the
bench database's PostgreSQL backends, from /proc) and the CPU Locust itself took: it
runs on the same cores and costs about the same per request on every path.

Creates `amanah_bench_<pid>` and drops only that database, and stops the gunicorn it
started, however the run ends. `collectstatic` fills `staticfiles/` (git-ignored),
which production settings serve from. `BENCH_LOAD_SECONDS=20` for a quick check.
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
from collections.abc import Iterator
from contextlib import contextmanager
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
ROUNDS = max(1, int(os.environ.get("BENCH_LOAD_ROUNDS", "3")))
WARMUP = float(os.environ.get("BENCH_LOAD_WARMUP", "5"))
SETTLE = 2.0  # before each measured phase: the previous path's requests finish
CUSTOMERS = int(os.environ.get("BENCH_CUSTOMERS", "10000"))
USERS = 50
WORKERS = 4
ASSIGNED_EACH = 4
PASSWORD = "bench-load-password-2026"  # noqa: S105 - bench accounts, dropped after
PAGE, API = "staff customer page", "consent API"
PATHS = ("ours", "naive", "floor")
# The goals (issue #14): every round, ours serves at least the naive page's requests
# per second divided by RATIO_GOAL, with a p99 under P99_GOAL_MS.
RATIO_GOAL = 1.3
P99_GOAL_MS = 300
# Production needs a shared cache (throttles): a Redis database of the bench's own,
# flushed (only it) before and after the run.
CACHE_URL = os.environ.get("BENCH_CACHE_URL", "redis://127.0.0.1:6379/9")


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
        AMANAH_PUBLIC_URL="https://127.0.0.1",  # links in emails; none is followed
        AMANAH_RELAY_SECRET=_setup._fixed_key(b"amanah-bench-relay-secret"),
        AMANAH_ERASURE_JOURNAL=os.path.join(
            tempfile.gettempdir(), "amanah-bench-erasure-journal.jsonl"
        ),
        DJANGO_LOG_LEVEL="WARNING",
        CACHE_URL=CACHE_URL,
        # The 25 API clients sign in from one address in the same second.
        AMANAH_TOKEN_RATE="10000/minute",  # noqa: S106 - a rate, not a password
        # Counted on every call as in production, never reached: the run measures the
        # work (tests/accounts/test_throttling.py holds the limit across processes).
        AMANAH_API_RATE="1000000/minute",
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


@contextmanager
def bench_cache() -> Iterator[None]:
    """The bench's own Redis database, empty before the run and after it, however
    it ends. Exits with status 1 and one line when Redis does not answer."""
    import redis

    client = redis.Redis.from_url(CACHE_URL, socket_connect_timeout=5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        raise SystemExit(f"Redis at {CACHE_URL} does not answer: {exc}") from exc
    try:
        yield
    finally:
        client.flushdb()
        client.close()


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


def drive(server: "Gunicorn", agents: list[dict]) -> dict:
    """Locust in its own process over every round; its results."""
    plan = {
        "host": server.url,
        "origin": server.url.replace("http://", "https://"),
        "users": USERS,
        "seconds": SECONDS / ROUNDS,
        "rounds": ROUNDS,
        "warmup": WARMUP,
        "settle": SETTLE,
        "password": PASSWORD,
        "agents": agents,
        "gunicorn_pid": server.process.pid,
        "database": DB_NAME,
    }
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump(plan, f)
        f.flush()
        budget = 300 + len(PATHS) * (WARMUP + ROUNDS * SETTLE + SECONDS) + 120
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


def _percentile(times: dict[int, int], percent: float) -> float:
    """The response time `percent` of the requests finished within, from Locust's
    histogram (ms: count) as Locust computes it (locust.stats; importing Locust here
    would patch this process with gevent)."""
    total = sum(times.values())
    wanted = int(total * percent)
    counted = 0
    for ms in sorted(times, reverse=True):
        counted += times[ms]
        if total - counted <= wanted:
            return ms
    return 0


def _merged(histograms: list[dict]) -> dict[int, int]:
    times: dict[int, int] = {}
    for histogram in histograms:
        for ms, count in histogram.items():
            times[int(ms)] = times.get(int(ms), 0) + count
    return times


def stats(measured: list[dict]) -> dict:
    """One path over one or more measured phases: per endpoint and for both,
    requests/s, errors and percentiles; the server's CPU ms per request and Locust's
    CPU share (of one core)."""
    seconds = sum(m["seconds"] for m in measured)
    out: dict = {}
    for endpoint in (PAGE, API):
        times = _merged([m[endpoint]["times"] for m in measured])
        requests = sum(m[endpoint]["requests"] for m in measured)
        out[endpoint] = {
            "rps": requests / seconds,
            "errors": sum(m[endpoint]["errors"] for m in measured),
            **{f"p{p}": _percentile(times, p / 100) for p in (50, 95, 99)},
        }
    times = _merged([m[e]["times"] for m in measured for e in (PAGE, API)])
    requests = sum(m[e]["requests"] for m in measured for e in (PAGE, API))
    server = [m["server_cpu"] for m in measured]
    out["all"] = {
        "rps": requests / seconds,
        "errors": out[PAGE]["errors"] + out[API]["errors"],
        "p99": _percentile(times, 0.99),
        "server_ms": 1000 * sum(server) / requests
        if requests and None not in server
        else None,
        "locust_share": 100 * sum(m["locust_cpu"] for m in measured) / seconds,
    }
    return out


def round_verdicts(results: dict) -> list[dict]:
    """Each round: ours/naive cost ratio in requests/s, ours's p99 per endpoint and
    overall, and whether the round met each goal."""
    verdicts = []
    for measured in results["rounds"]:
        ours, naive = stats([measured["ours"]]), stats([measured["naive"]])
        ratio = naive["all"]["rps"] / ours["all"]["rps"] if ours["all"]["rps"] else 0
        p99 = {key: ours[key]["p99"] for key in ("all", PAGE, API)}
        verdicts.append(
            {
                "ours": ours["all"]["rps"],
                "naive": naive["all"]["rps"],
                "ratio": ratio,
                "p99": p99,
                "ratio_ok": 0 < ratio <= RATIO_GOAL,
                "p99_ok": {key: value < P99_GOAL_MS for key, value in p99.items()},
            }
        )
    return verdicts


def rows(results: dict, verdicts: list[dict]) -> list[Row]:
    ours, naive, floor = (
        stats([measured[path] for measured in results["rounds"]]) for path in PATHS
    )
    every = " every round" if len(verdicts) > 1 else ""
    labels = {"naive_label": "naive", "raw_label": "floor"}
    out = [
        Row(
            f"all: requests/s ({USERS} users)",
            ours["all"]["rps"],
            naive["all"]["rps"],
            floor["all"]["rps"],
            goal=f"≥ naive/{RATIO_GOAL}{every}",
            ok=all(v["ratio_ok"] for v in verdicts),
            higher_is_better=True,
            **labels,
        ),
        Row(
            "all: p99 (ms)",
            ours["all"]["p99"],
            naive["all"]["p99"],
            floor["all"]["p99"],
            goal=f"< {P99_GOAL_MS}{every}",
            ok=all(v["p99_ok"]["all"] for v in verdicts),
            fmt="{:.0f}",
            **labels,
        ),
        Row(
            "all: errors",
            ours["all"]["errors"],
            naive["all"]["errors"],
            floor["all"]["errors"],
            goal="0",
            ok=ours["all"]["errors"] == 0,
            fmt="{:.0f}",
            **labels,
        ),
    ]
    if ours["all"]["server_ms"] is not None:
        out.append(
            Row(
                "all: server CPU per request (ms)",
                ours["all"]["server_ms"],
                naive["all"]["server_ms"],
                floor["all"]["server_ms"],
                goal="(explains all)",
                ok=None,
                fmt="{:.2f}",
                **labels,
            )
        )
    out.append(
        Row(
            "all: Locust CPU (% of a core)",
            ours["all"]["locust_share"],
            naive["all"]["locust_share"],
            floor["all"]["locust_share"],
            goal="(explains all)",
            ok=None,
            fmt="{:.0f}",
            **labels,
        )
    )
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
                higher_is_better=True,
                **labels,
            )
        )
        for key in ("p50", "p95", "p99"):
            goal, ok = "(explains all)", None
            if key == "p99":
                goal = f"< {P99_GOAL_MS}{every}"
                ok = all(v["p99_ok"][endpoint] for v in verdicts)
            out.append(
                Row(
                    f"{endpoint}: {key} (ms)",
                    o[key],
                    n[key],
                    f[key],
                    goal=goal,
                    ok=ok,
                    fmt="{:.0f}",
                    **labels,
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
                fmt="{:.0f}",
                **labels,
            )
        )
    return out


def print_rounds(verdicts: list[dict]) -> None:
    for number, v in enumerate(verdicts, 1):
        order = PATHS[(number - 1) % len(PATHS) :] + PATHS[: (number - 1) % len(PATHS)]
        print(
            f"round {number} ({', '.join(order)}): requests/s ours "
            f"{v['ours']:.1f}, naive {v['naive']:.1f}, ours/naive "
            f"{v['ratio']:.2f} ({'yes' if v['ratio_ok'] else 'NO'}); "
            f"p99 ours {v['p99']['all']:.0f} ms "
            f"({'yes' if v['p99_ok']['all'] else 'NO'})"
        )


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
        with bench_cache(), Gunicorn() as server:
            print(
                f"server: gunicorn, {WORKERS} sync workers at {server.url}; load: "
                f"{USERS} users (half pages, half API), {SECONDS:.0f} s per path in "
                f"{ROUNDS} rounds after sign-in and {WARMUP:.0f} s per path of warm-up"
            )
            results = drive(server, agents)
        signed = results["signed_in"]
        if signed != {"page": USERS // 2, "api": USERS - USERS // 2}:
            raise SystemExit(f"not every user signed in: {signed}")
        print(
            f"sign-in: {USERS} users in {results['sign_in_seconds']:.1f} s "
            "(before any measurement)"
        )
        verdicts = round_verdicts(results)
        print_rounds(verdicts)
        print()
        _setup.print_table(rows(results, verdicts))


if __name__ == "__main__":
    main()
