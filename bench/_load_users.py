"""The Locust side of bench/load.py, in a process of its own (Locust patches the
standard library with gevent at import; the parent keeps Django to itself).

Run as `python -m bench._load_users PLAN.json`. The plan names the server (its URL,
gunicorn's pid, the database), the staff accounts (password, TOTP key, assigned
customers), the seconds per measured phase, the rounds, the warm-up and settling
times; this prints one JSON line: how long sign-in took and, per round and path, the
requests, errors and response-time histogram of each endpoint and the CPU seconds that
Locust and the server used (bench/load.py adds them up).

Half the users are staff at the customer page: each signs in as its own support agent
(password, then the current code of its authenticator, as a person would; codes are
good once), then opens its assigned customers' pages in turn. The other half call the
consent API with the token their agent got from token sign-in. Every request carries
`X-Forwarded-Proto: https`, as from the TLS proxy production runs behind.
"""

import itertools
import json
import os
import re
import sys
import time
from http.cookiejar import DefaultCookiePolicy

import gevent
from django_otp.oath import TOTP
from locust import FastHttpUser, between, task
from locust.env import Environment

PAGE, API = "staff customer page", "consent API"
PATHS = {
    "ours": {
        PAGE: "/staff/customers/{id}/",
        API: "/api/v1/customers/{id}/consents/",
    },
    "naive": {
        PAGE: "/bench/naive/customers/{id}/",
        API: "/bench/naive/customers/{id}/consents/",
    },
    "floor": {PAGE: "/bench/floor/", API: "/bench/floor/"},
}
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

plan: dict = {}
phase = "ours"
agents = itertools.count()
signed_in = {"page": 0, "api": 0}


def expect_redirect(response, *, away_from: str) -> None:
    """A sign-in step that worked redirects onwards, not back to itself."""
    location = response.headers.get("location", "") if response.headers else ""
    if response.status_code != 302 or location.startswith(away_from):
        raise RuntimeError(f"sign-in: HTTP {response.status_code} to {location!r}")


class AmanahUser(FastHttpUser):
    abstract = True
    # A person reads a page before the next one.
    wait_time = between(0.1, 0.3)

    def on_start(self) -> None:
        # The app sees https (the proxy header) and sets Secure cookies; the hop to
        # gunicorn is plain http, so the jar must send them over it.
        self.client.cookiejar.set_policy(
            DefaultCookiePolicy(secure_protocols=("https", "http"))
        )
        self.proxy = {"X-Forwarded-Proto": "https"}
        self.agent = plan["agents"][next(agents) % len(plan["agents"])]
        self.customers = itertools.cycle(self.agent["customers"])

    def fetch(self, endpoint: str, headers: dict) -> None:
        url = PATHS[phase][endpoint].format(id=next(self.customers))
        with self.client.get(
            url,
            name=endpoint,
            headers=headers,
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"{phase}: HTTP {response.status_code}")


class StaffPageUser(AmanahUser):
    def on_start(self) -> None:
        super().on_start()
        origin = {**self.proxy, "Origin": plan["origin"]}
        page = self.client.get("/accounts/login/", name="sign-in", headers=self.proxy)
        step = self.client.post(
            "/accounts/login/",
            name="sign-in",
            headers=origin,
            allow_redirects=False,
            data={
                "username": self.agent["username"],
                "password": plan["password"],
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        expect_redirect(step, away_from="/accounts/login/")
        # Signing in rotates the CSRF token: take the one of the code page.
        page = self.client.get("/accounts/2fa/verify/", name="sign-in", headers=origin)
        code = TOTP(bytes.fromhex(self.agent["totp_key"])).token()
        step = self.client.post(
            "/accounts/2fa/verify/",
            name="sign-in",
            headers=origin,
            allow_redirects=False,
            data={
                "otp_token": f"{code:06d}",
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        expect_redirect(step, away_from="/accounts/")
        signed_in["page"] += 1

    @task
    def customer_page(self) -> None:
        self.fetch(PAGE, self.proxy)


class ConsentApiUser(AmanahUser):
    def on_start(self) -> None:
        super().on_start()
        response = self.client.post(
            "/api/v1/auth/token/",
            name="sign-in",
            headers=self.proxy,
            json={"username": self.agent["username"], "password": plan["password"]},
        )
        self.auth = {**self.proxy, "Authorization": f"Token {response.json()['token']}"}
        signed_in["api"] += 1

    @task
    def consents(self) -> None:
        self.fetch(API, self.auth)


def cpu_seconds(pids: list[int]) -> dict[int, float]:
    """User and system CPU seconds each of `pids` has used so far (Linux /proc; a
    process that has ended is left out)."""
    used = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        used[pid] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return used


def server_pids() -> list[int]:
    """The gunicorn workers and the PostgreSQL backends on the bench database: the
    processes whose CPU a request costs on the server side. Empty without /proc."""
    arbiter = plan["gunicorn_pid"]
    try:
        with open(f"/proc/{arbiter}/task/{arbiter}/children") as f:
            pids = [int(pid) for pid in f.read().split()]
        entries = [entry for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []
    # PostgreSQL titles a backend "postgres: ...: <user> <database> <client> ...".
    database = f" {plan['database']} ".encode()
    for entry in entries:
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                title = f.read()
        except OSError:
            continue
        if title.startswith(b"postgres: ") and database in title:
            pids.append(int(entry))
    return pids


def measure(env: Environment, seconds: float) -> dict:
    """Run the current phase for `seconds` from fresh statistics: per endpoint, the
    request count, errors and Locust's response-time histogram (ms: count); the CPU
    seconds Locust and the server used meanwhile (None without /proc; a process that
    ended meanwhile, such as a connection past CONN_MAX_AGE, is missed)."""
    env.stats.reset_all()
    server_before = cpu_seconds(server_pids())
    locust_before = time.process_time()
    started = time.monotonic()
    gevent.sleep(seconds)
    elapsed = time.monotonic() - started
    locust_cpu = time.process_time() - locust_before
    server_after = cpu_seconds(server_pids())
    result: dict = {
        "seconds": elapsed,
        "locust_cpu": locust_cpu,
        "server_cpu": sum(
            used - server_before.get(pid, 0) for pid, used in server_after.items()
        )
        if server_before
        else None,
    }
    for endpoint in (PAGE, API):
        entry = env.stats.get(endpoint, "GET")
        result[endpoint] = {
            "requests": entry.num_requests,
            "errors": entry.num_failures,
            "times": entry.response_times,
        }
    return result


def wait_signed_in(expected: int, timeout: float) -> float:
    """Seconds until every user has signed in (50 Argon2 checks: setup, never
    measured). Raises RuntimeError after `timeout`."""
    started = time.monotonic()
    while signed_in["page"] + signed_in["api"] < expected:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"sign-in: only {signed_in} after {timeout:.0f} s")
        gevent.sleep(0.25)
    return time.monotonic() - started


def main() -> None:
    """Sign every user in, serve each path once unmeasured (workers warm, statements
    prepared), then `rounds` rounds that measure every path in turn, each round
    starting with the next path, so drift and bursts land on all of them alike."""
    global phase
    with open(sys.argv[1]) as f:
        plan.update(json.load(f))
    env = Environment(user_classes=[StaffPageUser, ConsentApiUser], host=plan["host"])
    runner = env.create_local_runner()
    names = list(PATHS)
    phase = names[0]
    runner.start(user_count=plan["users"], spawn_rate=plan["users"])
    results: dict = {"sign_in_seconds": wait_signed_in(plan["users"], timeout=300)}
    results["signed_in"] = dict(signed_in)
    for name in names:
        phase = name
        gevent.sleep(plan["warmup"])
    rounds = []
    for number in range(plan["rounds"]):
        measured = {}
        for step in range(len(names)):
            phase = names[(number + step) % len(names)]
            # Requests already sent on the previous path finish first.
            gevent.sleep(plan["settle"])
            measured[phase] = measure(env, plan["seconds"])
        rounds.append(measured)
    runner.quit()
    results["rounds"] = rounds
    print(json.dumps(results))


if __name__ == "__main__":
    main()
