"""Side doors through URLs (issue #15): a search by email or phone never puts the
value in a URL, so no access log, proxy log or monitoring tool can write it down.

A real gunicorn serves the test database, with its access log and its application log
(Django's logging at DEBUG, and gunicorn's own) in files. The searches go through the
API's `POST /api/v1/customers/search/`, the staff desk's form and the admin's "Find by
email or phone", the forms submitted as a browser would (their method, action and
fields as the page gives them). Then neither log may hold the searched email or phone,
as typed, normalised or URL-encoded. The access log is written in the combined format
a proxy in front keeps (request line with its query string, referrer, user agent), not
the Procfile's path-only one: the point is that no URL carries the values at all. Last,
the old GET forms are refused (400) without searching or echoing the value.
"""

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from html.parser import HTMLParser
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import quote, quote_plus, urlencode, urlsplit

import pytest
from django.db import connection
from django.test import Client

from apps.accounts.models import Role
from apps.accounts.services import token_issue, user_ensure_staff
from apps.monitoring.models import LookupKind, StaffLookup
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = [
    pytest.mark.postgres,  # the server and this test share the database
    pytest.mark.django_db(transaction=True),  # what is set up here, it must see
]

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "side.door.vexq@leak-scan.example"
PHONE = "0812-5550-7319"  # as typed; stored as +6281255507319
# What the logs are searched for: each value as typed, as the app normalises it, and
# as a URL carries either.
NEEDLES = {
    "email": EMAIL,
    "email (URL-encoded)": quote(EMAIL, safe=""),
    "email (local part)": EMAIL.split("@")[0],
    "phone": PHONE,
    "phone (URL-encoded)": quote_plus(PHONE),
    "phone (E.164)": "+6281255507319",
    "phone (E.164, URL-encoded)": quote("+6281255507319", safe=""),
    "phone (digits)": "81255507319",
}
# Gunicorn's default, close to nginx's combined log format: what a proxy writes.
ACCESS_LOG_FORMAT = '%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s "%(f)s" "%(a)s"'
# The test settings with every log record of the app on stderr (into the app log).
SETTINGS_SHIM = """\
from config.settings.test import *  # noqa: F403

LOGGING["root"]["level"] = "DEBUG"  # noqa: F405
LOGGING["handlers"]["console"]["level"] = "DEBUG"  # noqa: F405
"""


def assert_not_in(text: str, *, where: str) -> None:
    for name, value in NEEDLES.items():
        # pytest.fail, not assert: pytest's report would print the log line, and with
        # it the very value being reported.
        if value.lower() in text.lower():
            pytest.fail(f"the searched {name} is in the {where}", pytrace=False)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url() -> str:
    db = connection.settings_dict
    user = quote(db["USER"] or "postgres", safe="")
    password = f":{quote(db['PASSWORD'], safe='')}" if db["PASSWORD"] else ""
    host = db["HOST"] or "127.0.0.1"
    return f"postgres://{user}{password}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture
def server(tmp_path):
    """Gunicorn on the test database: (origin, access log, app log)."""
    (tmp_path / "leak_scan_settings.py").write_text(SETTINGS_SHIM)
    access_log, app_log = tmp_path / "access.log", tmp_path / "app.log"
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "leak_scan_settings",
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)]),
        "DATABASE_URL": _database_url(),
    }
    with app_log.open("wb") as output:
        process = subprocess.Popen(  # noqa: S603 - our interpreter, fixed arguments
            [
                sys.executable,
                "-m",
                "gunicorn",
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "1",
                "--access-logfile",
                str(access_log),
                "--access-logformat",
                ACCESS_LOG_FORMAT,
                "--error-logfile",
                "-",
                "--log-level",
                "debug",
            ],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_until_up(port, process, app_log)
        yield f"http://127.0.0.1:{port}", access_log, app_log
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _wait_until_up(port: int, process: subprocess.Popen, app_log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"gunicorn exited: {app_log.read_text()[-2000:]}")
        with contextlib.suppress(OSError):
            status, _, _ = Browser(f"http://127.0.0.1:{port}").get("/status/")
            if status == 200:
                return
        time.sleep(0.2)
    pytest.fail("gunicorn did not answer /status/ within 60 s")


class Browser:
    """A browser's requests: cookies kept, redirects not followed, `Referer` the
    origin only (the site's `strict-origin` policy)."""

    def __init__(self, origin: str, **cookies: str):
        self.origin = origin
        self.cookies = dict(cookies)
        self.headers: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str, dict[str, str]]:
        where = urlsplit(self.origin)
        conn = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        sent = {"Referer": self.origin + "/", **self.headers, **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        try:
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            text = response.read().decode()
        finally:
            conn.close()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return response.status, text, dict(response.headers)

    def get(self, path: str):
        return self.request("GET", path)

    def post_json(self, path: str, data: dict):
        body = json.dumps(data).encode()
        return self.request(
            "POST", path, body=body, headers={"Content-Type": "application/json"}
        )

    def submit(self, page_path: str, page: str, values: dict[str, str]):
        """Fill in the search form of `page` and send it as a browser would: its
        method, its action, its hidden fields (the CSRF token) and `values`."""
        form = search_form(page)
        fields = {**form["hidden"], **values}
        action = form["action"] or page_path
        if form["method"] == "post":
            return self.request(
                "POST",
                action,
                body=urlencode(fields).encode(),
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        separator = "&" if "?" in action else "?"
        return self.get(f"{action}{separator}{urlencode(fields)}")


class _Forms(HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.forms.append(
                {
                    "method": (attrs.get("method") or "get").lower(),
                    "action": attrs.get("action") or "",
                    "hidden": {},
                    "names": set(),
                }
            )
        elif tag == "input" and self.forms and attrs.get("name"):
            form = self.forms[-1]
            form["names"].add(attrs["name"])
            if attrs.get("type") == "hidden":
                form["hidden"][attrs["name"]] = attrs.get("value") or ""


def search_form(page: str) -> dict:
    """The form on `page` that takes an email and a phone."""
    parser = _Forms()
    parser.feed(page)
    for form in parser.forms:
        if {"email", "phone"} <= form["names"]:
            return form
    pytest.fail("no search form with email and phone fields on the page")


def _session(user) -> str:
    """A signed-in session (second factor passed) for `user`: its cookie's value."""
    client = Client()
    sign_in(client, user)
    return client.cookies["sessionid"].value


def scan(origin: str, access_log: Path, app_log: Path) -> str:
    """Both logs scanned once the server has written them; the access log's text."""
    # One sync worker answers one request at a time and writes its access line before
    # the next: once this request is in the log, every earlier one is too.
    marker = uuid.uuid4().hex
    Browser(origin).get(f"/status/?settled={marker}")
    deadline = time.monotonic() + 20
    while marker not in (access := access_log.read_text()):
        if time.monotonic() > deadline:
            pytest.fail("the access log did not catch up")
        time.sleep(0.05)
    assert_not_in(access, where="access log")
    assert_not_in(app_log.read_text(), where="application log")
    return access


def test_searches_by_email_or_phone_leave_no_trace_in_the_servers_logs(server):
    origin, access_log, app_log = server
    customer = make_customer(email=EMAIL, phone=PHONE, full_name="Vexq Sidedoor")
    support = user_ensure_staff(
        actor=None, username="scan-support", role=Role.SUPPORT_AGENT, password="x" * 20
    )
    admin = user_ensure_staff(
        actor=None, username="scan-admin", role=Role.PRIVACY_ADMIN, password="x" * 20
    )
    searches = [{"email": EMAIL, "phone": ""}, {"email": "", "phone": PHONE}]

    # The staff desk, through its form as the page gives it.
    desk = Browser(origin, sessionid=_session(support))
    for search in searches:
        status, page, _ = desk.get("/staff/")
        assert status == 200
        status, page, headers = desk.submit("/staff/", page, search)
        assert status == 200, (status, headers.get("Location"))  # no redirect
        assert "V••• S•••" in page  # the match, masked
    access = scan(origin, access_log, app_log)
    assert '"POST /staff/ HTTP/1.1" 200' in access  # the scan reads a real log

    # The API, with a token.
    api = Browser(origin)
    api.headers["Authorization"] = f"Token {token_issue(user=support).key}"
    for search in searches:
        status, text, _ = api.post_json("/api/v1/customers/search/", search)
        assert status == 200, text[:300]
        assert [c["id"] for c in json.loads(text)["results"]] == [str(customer.pk)]
    access = scan(origin, access_log, app_log)
    assert '"POST /api/v1/customers/search/ HTTP/1.1" 200' in access

    # The admin: the changelist links to its search by email or phone.
    staff_admin = Browser(origin, sessionid=_session(admin))
    status, changelist, _ = staff_admin.get("/admin/customers/customer/")
    assert status == 200
    assert 'href="/admin/customers/customer/find/"' in changelist
    for search in searches:
        status, page, _ = staff_admin.get("/admin/customers/customer/find/")
        assert status == 200
        status, page, headers = staff_admin.submit(
            "/admin/customers/customer/find/", page, search
        )
        assert status == 200, (status, headers.get("Location"))
        assert f"/admin/customers/customer/{customer.pk}/change/" in page
    access = scan(origin, access_log, app_log)
    assert '"POST /admin/customers/customer/find/ HTTP/1.1" 200' in access
    assert "Booting worker" in app_log.read_text()  # gunicorn's log is in there too

    # Monitoring saw every search (by kind, never by value).
    searched = StaffLookup.objects.filter(kind=LookupKind.SEARCH)
    assert searched.filter(staff=support).count() == 4
    assert searched.filter(staff=admin).count() == 2

    # The old GET forms are refused: nothing searched, the value not echoed.
    old = [
        (api, "/api/v1/customers/?" + urlencode({"email": EMAIL})),
        (api, "/api/v1/customers/?" + urlencode({"phone": PHONE})),
        (desk, "/staff/?" + urlencode({"email": EMAIL})),
        (desk, "/staff/?" + urlencode({"phone": PHONE})),
        (staff_admin, "/admin/customers/customer/?" + urlencode({"q": EMAIL})),
        (staff_admin, "/admin/customers/customer/?" + urlencode({"q": PHONE})),
        (staff_admin, "/admin/customers/customer/find/?" + urlencode({"email": EMAIL})),
    ]
    for browser, path in old:
        status, text, _ = browser.get(path)
        assert status == 400, path.split("?")[0]
        assert_not_in(text, where=f"400 answer of {path.split('?')[0]}")
    assert "POST /api/v1/customers/search/" in api.get(old[0][1])[1]
    assert searched.count() == 6
    # ...and a value in a URL does reach the access log: what the scans above would
    # have found, had a search been a GET.
    with pytest.raises(pytest.fail.Exception, match="email"):
        scan(origin, access_log, app_log)
