"""The Locust side of bench/soak.py, in a process of its own (Locust patches the
standard library with gevent at import; the soak keeps Django to itself).

Run as `python -m bench._soak_users PLAN.json`. The plan names the server, the accounts
of each kind of user and the customers they work on; this prints one JSON line with
requests, statuses and latencies per request name, counted after the warm-up.

Every request carries `X-Forwarded-Proto: https`, as from the TLS proxy production runs
behind. Each request names the statuses that are right for it (a reveal past the
hourly limit is a 429, not an error; a 403 on a reveal is right only when its body's
code says a monitoring alert holds the agent's reveals, `reveals_suspended`, and is
counted apart); anything else is a failure, and counted by status.
"""

import hashlib
import hmac
import itertools
import json
import random
import re
import sys
import time
from collections import Counter
from http.cookiejar import DefaultCookiePolicy
from urllib.parse import urlsplit

import gevent
from django_otp.oath import TOTP
from locust import FastHttpUser, between, task
from locust.env import Environment

CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
TOGGLE = re.compile(
    r'action="(/me/consents/[\w-]+/)".*?name="granted" value="([01])"', re.DOTALL
)
REVEAL_REASON = "Customer asked to confirm their contact details on the call"
CONSENT_REASON = "Customer asked on the phone to change this choice"
REVEALS_AT_ONCE = 3
# While a high alert holds an agent's reveals the product answers this (apps/access).
SUSPENDED = (403, "reveals_suspended")
ALERTS = "/compliance/alerts/"
OPEN_ALERT = re.compile(r'action="/compliance/alerts/(\d+)/acknowledge/"')
DISMISS_REASON = (
    "Reviewed with the team lead: the reveals match the agent's open support cases"
)
# Seconds between the compliance officer's reviews of the open alerts, and how many
# of the others (after every high one) one review handles: the high ones, which hold
# agents' reveals, are looked at again soon.
REVIEW_EVERY = (20.0, 40.0)
OTHERS_PER_REVIEW = 4
# Exact search: email and phone in the body, never in a URL (access logs keep URLs).
SEARCH = "/api/v1/customers/search/"
# Requests before the measurement starts.
SETUP = ("sign-in:",)

plan: dict = {}
measuring = False
statuses: Counter = Counter()  # (name, status) while measuring; status 0: no response
unexpected: Counter = Counter()  # (name, status) outside the request's right ones
refused: Counter = Counter()  # (name, code): a refusal the request allows, by its code
signed_in: Counter = Counter()
taken: dict[str, itertools.count] = {}


def _count(name, response, exception, **_kwargs) -> None:
    if measuring:
        status = getattr(response, "status_code", 0) or 0
        statuses[(name, status)] += 1


def take(kind: str) -> dict:
    """The next account of this kind (users of one kind never share an account)."""
    counter = taken.setdefault(kind, itertools.count())
    accounts = plan["accounts"][kind]
    return accounts[next(counter) % len(accounts)]


def pick_customer() -> dict:
    """A customer to work on: the canary now and then, often one of the few that
    customers and other agents are busy with too (contention), else any."""
    roll = random.random()
    if roll < 0.05:
        return plan["canary"]
    pool = plan["pool"]
    if roll < 0.35:
        return random.choice(pool[: plan["hot"]])
    return random.choice(pool)


def pause() -> None:
    gevent.sleep(random.uniform(0.05, 0.2))


class SoakUser(FastHttpUser):
    abstract = True
    # A person reads before the next step; the steps of one task are closer.
    wait_time = between(0.2, 0.6)
    # Several requests of one user in flight at once (the reveal burst).
    concurrency = REVEALS_AT_ONCE + 1

    def on_start(self) -> None:
        # The app sees https (the proxy header) and sets Secure cookies; the hop to
        # gunicorn is plain http, so the jar must send them over it.
        self.client.cookiejar.set_policy(
            DefaultCookiePolicy(secure_protocols=("https", "http"))
        )
        self.proxy = {"X-Forwarded-Proto": "https"}
        self.origin = {**self.proxy, "Origin": plan["origin"]}
        self.auth = self.proxy

    def call(
        self,
        method: str,
        path: str,
        *,
        name: str,
        ok: set[int],
        refusal: tuple[int, str] | None = None,
        **kwargs,
    ):
        """The request; right when its status is in `ok`, or is `refusal`'s status
        with `refusal`'s code in the body (counted in `refused`)."""
        kwargs.setdefault("headers", self.auth)
        with self.client.request(
            method,
            path,
            name=name,
            allow_redirects=False,
            catch_response=True,
            **kwargs,
        ) as response:
            if response.status_code in ok:
                response.success()
            elif refusal and (response.status_code, body_code(response)) == refusal:
                response.success()
                if measuring:
                    refused[(name, refusal[1])] += 1
            else:
                response.failure(f"HTTP {response.status_code}")
                if measuring:
                    unexpected[(name, response.status_code or 0)] += 1
            return response

    def token_sign_in(self, username: str) -> None:
        response = self.call(
            "POST",
            "/api/v1/auth/token/",
            name="sign-in: token",
            ok={200},
            headers=self.proxy,
            json={"username": username, "password": plan["password"]},
        )
        if response.status_code != 200:
            raise RuntimeError(f"token sign-in: HTTP {response.status_code}")
        self.auth = {**self.proxy, "Authorization": f"Token {response.json()['token']}"}

    def page_sign_in(self, account: dict) -> None:
        """Staff pages: password, then the authenticator's code."""
        page = self.call(
            "GET", "/accounts/login/", name="sign-in: staff page", ok={200}
        )
        step = self.call(
            "POST",
            "/accounts/login/",
            name="sign-in: staff page",
            ok={302},
            headers=self.origin,
            data={
                "username": account["username"],
                "password": plan["password"],
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        if step.status_code != 302:
            raise RuntimeError(f"staff sign-in: HTTP {step.status_code}")
        page = self.call(
            "GET",
            "/accounts/2fa/verify/",
            name="sign-in: staff page",
            ok={200},
            headers=self.origin,
        )
        code = TOTP(bytes.fromhex(account["totp_key"])).token()
        step = self.call(
            "POST",
            "/accounts/2fa/verify/",
            name="sign-in: staff page",
            ok={302},
            headers=self.origin,
            data={
                "otp_token": f"{code:06d}",
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        if step.status_code != 302:
            raise RuntimeError(f"staff second factor: HTTP {step.status_code}")


def body_code(response) -> str:
    """The `code` of an API error body (apps/core/exceptions.py), or ""."""
    try:
        body = json.loads(response.text or "")
    except (TypeError, ValueError):
        return ""
    return body.get("code", "") if isinstance(body, dict) else ""


class SupportAgent(SoakUser):
    """Searches by exact email or phone, opens a case, reads, reveals (several at
    once), sometimes changes a consent on the customer's behalf, closes the case."""

    def on_start(self) -> None:
        super().on_start()
        self.token_sign_in(take("support")["username"])
        signed_in["support"] += 1

    def search(self, customer: dict):
        field = random.choice(("email", "phone"))
        return self.call(
            "POST",
            SEARCH,
            name="support: search",
            ok={200},
            json={field: customer[field]},
        )

    @task
    def case(self) -> None:
        customer = pick_customer()
        found = self.search(customer)
        if found.status_code != 200:
            return
        opened = self.call(
            "POST",
            "/api/v1/interactions/",
            name="support: open case",
            ok={201},
            json={"customer": customer["id"], "kind": "support_case"},
        )
        if opened.status_code != 201:
            return
        case_id = opened.json()["id"]
        pause()
        detail = f"/api/v1/customers/{customer['id']}/"
        for _ in range(2):
            self.call("GET", detail, name="support: read customer", ok={200})
        self.call("GET", detail + "consents/", name="support: read consents", ok={200})
        pause()
        # Two browser tabs, a double click: the hourly limit must hold all the same.
        burst = [
            gevent.spawn(
                self.call,
                "POST",
                detail + "reveal/",
                name=f"support: reveal ({REVEALS_AT_ONCE} at once)",
                ok={200, 429},
                refusal=SUSPENDED,
                json={"fields": ["email", "phone"], "reason": REVEAL_REASON},
            )
            for _ in range(REVEALS_AT_ONCE)
        ]
        gevent.joinall(burst)
        if random.random() < 0.3:
            self.call(
                "POST",
                detail + "consents/",
                name="support: change consent for the customer",
                ok={200, 202},
                json={
                    "purpose": random.choice(plan["purposes"]),
                    "granted": random.random() < 0.5,
                    "reason": CONSENT_REASON,
                },
            )
        pause()
        self.call(
            "POST",
            f"/api/v1/interactions/{case_id}/close/",
            name="support: close case",
            ok={200},
        )


class StaffPageUser(SoakUser):
    """A support agent on the pages: password and authenticator code, then the desk
    and the assigned customers' pages."""

    def on_start(self) -> None:
        super().on_start()
        self.account = take("page")
        self.customers = itertools.cycle(self.account["customers"])
        self.page_sign_in(self.account)
        signed_in["page"] += 1

    @task(3)
    def customer_page(self) -> None:
        self.call(
            "GET",
            f"/staff/customers/{next(self.customers)}/",
            name="staff page: customer",
            ok={200},
        )

    @task(1)
    def desk(self) -> None:
        self.call("GET", "/staff/", name="staff page: desk", ok={200})


class ComplianceOfficer(SoakUser):
    """A compliance officer on the alerts page (password and authenticator code):
    every so often reviews the open alerts, every high one first, then a few others;
    acknowledges each, then dismisses it with the reason the review found, which
    lifts the suspension a high alert holds on the agent's reveals
    (apps/monitoring/selectors.py, alert_reveals_suspended_since)."""

    wait_time = between(*REVIEW_EVERY)

    def on_start(self) -> None:
        super().on_start()
        self.page_sign_in(take("officer"))
        signed_in["officer"] += 1

    @task
    def review(self) -> None:
        # Every high one first (they hold agents' reveals), then a few of the rest.
        self.handle_open("?status=open&severity=high")
        self.handle_open("?status=open", at_most=OTHERS_PER_REVIEW)

    def handle_open(self, query: str, at_most: int | None = None) -> None:
        page = self.call(
            "GET", ALERTS + query, name="compliance: open alerts", ok={200}
        )
        if page.status_code != 200:
            return
        open_ids = sorted({int(n) for n in OPEN_ALERT.findall(page.text)})
        csrf = CSRF.search(page.text)
        if not open_ids or csrf is None:
            return
        form = {"csrfmiddlewaretoken": csrf.group(1), "status_filter": "open"}
        for alert_id in open_ids[:at_most]:
            pause()  # reads the evidence
            acknowledged = self.call(
                "POST",
                f"{ALERTS}{alert_id}/acknowledge/",
                name="compliance: acknowledge alert",
                ok={302},
                headers=self.origin,
                data=form,
            )
            if acknowledged.status_code != 302:
                continue
            pause()
            self.call(
                "POST",
                f"{ALERTS}{alert_id}/dismiss/",
                name="compliance: dismiss alert",
                ok={302},
                headers=self.origin,
                data={**form, "reason": DISMISS_REASON},
            )


class DeliveryAgent(SoakUser):
    """Lists the deliveries, reads the drop-off point, calls the customer through the
    masked relay (the provider's signed webhook)."""

    def on_start(self) -> None:
        super().on_start()
        self.account = take("delivery")
        self.token_sign_in(self.account["username"])
        signed_in["delivery"] += 1

    @task(2)
    def read(self) -> None:
        self.call(
            "GET", "/api/v1/interactions/", name="delivery: my deliveries", ok={200}
        )
        delivery = random.choice(self.account["deliveries"])
        self.call(
            "GET",
            f"/api/v1/customers/{delivery['customer']}/",
            name="delivery: read customer",
            ok={200},
        )

    @task(1)
    def call_customer(self) -> None:
        delivery = random.choice(self.account["deliveries"])
        # Each signed relay request is accepted once: the call's own id, as a real
        # provider sends, keeps two calls in one second from being one request.
        body = json.dumps(
            {
                "alias": delivery["alias"],
                "caller": self.account["work_phone"],
                "call_id": f"{random.getrandbits(64):016x}",
            }
        ).encode()
        stamp = str(int(time.time()))
        signature = hmac.new(
            plan["relay_secret"].encode(), stamp.encode() + b"." + body, hashlib.sha256
        ).hexdigest()
        self.call(
            "POST",
            "/api/v1/contact/relay/",
            name="delivery: relayed call (webhook)",
            ok={200},
            headers={
                **self.proxy,
                "Content-Type": "application/json",
                "X-Amanah-Timestamp": stamp,
                "X-Amanah-Signature": signature,
            },
            data=body,
        )


class CustomerUser(SoakUser):
    """A customer on the self-service pages: signs in, switches consents, downloads
    the receipts."""

    def on_start(self) -> None:
        super().on_start()
        self.account = take("customer")
        page = self.call("GET", "/me/login/", name="sign-in: customer", ok={200})
        step = self.call(
            "POST",
            "/me/login/",
            name="sign-in: customer",
            ok={302},
            headers=self.origin,
            data={
                "email": self.account["email"],
                "password": plan["password"],
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )
        location = (step.headers or {}).get("location", "")
        if step.status_code != 302 or location.startswith("/me/login/"):
            raise RuntimeError(f"customer sign-in: HTTP {step.status_code}")
        signed_in["customer"] += 1

    def consents_page(self):
        page = self.call("GET", "/me/", name="customer: consents page", ok={200, 302})
        location = (page.headers or {}).get("location", "")
        if page.status_code == 302 and location.startswith("/me/notice/"):
            # A changed privacy notice is reviewed first.
            notice = self.call("GET", location, name="customer: notice", ok={200})
            self.call(
                "POST",
                "/me/notice/",
                name="customer: notice",
                ok={302},
                headers=self.origin,
                data={"csrfmiddlewaretoken": CSRF.search(notice.text).group(1)},
            )
            page = self.call("GET", "/me/", name="customer: consents page", ok={200})
        return page if page.status_code == 200 else None

    @task(3)
    def switch(self) -> None:
        page = self.consents_page()
        if page is None:
            return
        toggles = TOGGLE.findall(page.text)
        if not toggles:
            return
        action, granted = random.choice(toggles)
        pause()
        self.call(
            "POST",
            action,
            name="customer: switch a consent",
            ok={302},
            headers=self.origin,
            data={
                "granted": granted,
                "csrfmiddlewaretoken": CSRF.search(page.text).group(1),
            },
        )

    @task(1)
    def receipts(self) -> None:
        self.call(
            "GET",
            "/me/consents/receipts.json",
            name="customer: download receipts",
            ok={200},
        )


class Sender(SoakUser):
    """The marketing system: who may be contacted, with unsubscribe links, and now and
    then a recipient's one-click unsubscribe (RFC 8058) from such a link."""

    def on_start(self) -> None:
        super().on_start()
        self.token_sign_in(take("sender")["username"])
        signed_in["sender"] += 1

    @task(4)
    def audience(self) -> None:
        ids = random.sample(plan["audience_ids"], min(500, len(plan["audience_ids"])))
        response = self.call(
            "POST",
            "/api/v1/consent/audience/",
            name="sender: audience (500 ids)",
            ok={200},
            json={
                "purpose": random.choice(plan["purposes"]),
                "customer_ids": ids,
                "include_unsubscribe": True,
            },
        )
        if response.status_code != 200:
            return
        links = list(response.json().get("unsubscribe", {}).values())
        if links and random.random() < 0.3:
            self.call(
                "POST",
                urlsplit(random.choice(links)).path,
                name="recipient: one-click unsubscribe",
                ok={200},
                headers={
                    **self.proxy,
                    "Content-Type": "application/x-www-form-urlencoded",
                },
                data="List-Unsubscribe=One-Click",
            )

    @task(1)
    def audience_csv(self) -> None:
        self.call(
            "GET",
            f"/api/v1/consent/audience/{random.choice(plan['purposes'])}.csv",
            name="sender: audience (CSV of all)",
            ok={200},
        )


CLASSES = {
    "support": SupportAgent,
    "page": StaffPageUser,
    "delivery": DeliveryAgent,
    "customer": CustomerUser,
    "sender": Sender,
    "officer": ComplianceOfficer,
}


def summary(env: Environment, seconds: float) -> dict:
    names = {}
    for (name, _method), entry in env.stats.entries.items():
        if name.startswith(SETUP):
            continue
        names[name] = {
            "requests": entry.num_requests,
            "rps": entry.num_requests / seconds,
            "failures": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.50),
            "p99": entry.get_response_time_percentile(0.99),
        }
    measured = {k: v for k, v in statuses.items() if not k[0].startswith(SETUP)}
    return {
        "seconds": seconds,
        "requests": sum(measured.values()),
        "names": names,
        "statuses": [[name, status, n] for (name, status), n in measured.items()],
        "unexpected": [[name, status, n] for (name, status), n in unexpected.items()],
        "refused": [[name, code, n] for (name, code), n in refused.items()],
        "signed_in": dict(signed_in),
    }


def main() -> None:
    global measuring
    with open(sys.argv[1]) as f:
        plan.update(json.load(f))
    for kind, cls in CLASSES.items():
        cls.fixed_count = plan["users"][kind]
    classes = [cls for kind, cls in CLASSES.items() if plan["users"][kind]]
    env = Environment(user_classes=classes, host=plan["host"])
    env.events.request.add_listener(_count)
    runner = env.create_local_runner()
    total = sum(plan["users"].values())
    runner.start(user_count=total, spawn_rate=total)
    gevent.sleep(plan["warmup"])  # every sign-in, then a few rounds of work
    env.stats.reset_all()
    measuring = True
    started = time.monotonic()
    gevent.sleep(plan["seconds"])
    measuring = False
    result = summary(env, time.monotonic() - started)
    runner.quit()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
