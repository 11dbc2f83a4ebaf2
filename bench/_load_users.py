"""The Locust side of bench/load.py, in a process of its own (Locust patches the
standard library with gevent at import; the parent keeps Django to itself).

Run as `python -m bench._load_users PLAN.json`. The plan names the server, the staff
accounts (password, TOTP key, assigned customers) and the phases; this prints one JSON
line with, per phase and endpoint, requests per second, percentiles and errors.

Half the users are staff at the customer page: each signs in as its own support agent
(password, then the current code of its authenticator, as a person would; codes are
good once), then opens its assigned customers' pages in turn. The other half call the
consent API with the token their agent got from token sign-in. Every request carries
`X-Forwarded-Proto: https`, as from the TLS proxy production runs behind.
"""

import itertools
import json
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


def summary(env: Environment, seconds: float) -> dict:
    result = {}
    for endpoint in (PAGE, API):
        entry = env.stats.get(endpoint, "GET")
        result[endpoint] = {
            "requests": entry.num_requests,
            "rps": entry.num_requests / seconds,
            "errors": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.50),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99),
        }
    total = env.stats.total
    result["all"] = {
        "requests": sum(result[e]["requests"] for e in (PAGE, API)),
        "errors": sum(result[e]["errors"] for e in (PAGE, API)),
        "rps": sum(result[e]["requests"] for e in (PAGE, API)) / seconds,
        "p99": total.get_response_time_percentile(0.99),
    }
    return result


def main() -> None:
    global phase
    with open(sys.argv[1]) as f:
        plan.update(json.load(f))
    env = Environment(user_classes=[StaffPageUser, ConsentApiUser], host=plan["host"])
    runner = env.create_local_runner()
    runner.start(user_count=plan["users"], spawn_rate=plan["users"])
    results: dict = {}
    for name, warmup in plan["phases"]:
        phase = name
        gevent.sleep(warmup)  # sign-in (first phase), then each path's own warm-up
        env.stats.reset_all()
        started = time.monotonic()
        gevent.sleep(plan["seconds"])
        results[name] = summary(env, time.monotonic() - started)
        if name == plan["phases"][0][0]:
            results["signed_in"] = dict(signed_in)
    runner.quit()
    print(json.dumps(results))


if __name__ == "__main__":
    main()
