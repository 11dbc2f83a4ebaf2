"""A customer in headless Chromium asks for their data, downloads it, then asks for
erasure."""

import io
import zipfile
from urllib.parse import urlsplit

import pytest
from django.core import mail

from apps.requests.models import DataRequest
from apps.requests.services import request_open
from tests.consent.factories import reseed_purposes
from tests.portal.factories import PASSWORD, make_account

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_customer_downloads_their_data_and_asks_for_erasure(live_server, browser):
    reseed_purposes()
    from importlib import import_module

    from django.apps import apps

    import_module("apps.inventory.migrations.0002_seed_inventory").seed(apps, None)
    customer = make_account(email="siti@example.com", full_name="Siti Rahma")
    page = browser.new_page(accept_downloads=True)
    page.goto(f"{live_server.url}/me/login/")
    page.get_by_label("Email address").fill("siti@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()

    page.goto(f"{live_server.url}/me/data/")
    page.get_by_label("What would you like?").select_option("access")
    page.get_by_role("button", name="Send my request").click()
    # Made at once (no task queue here): the message says it is done.
    page.get_by_text("Your request is done: download your data below.").wait_for()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download my data").click()
    archive = zipfile.ZipFile(io.BytesIO(download_info.value.path().read_bytes()))
    assert "Siti Rahma" in archive.read("my-data.json").decode()
    page.reload()
    assert page.get_by_role("link", name="Download my data").count() == 0  # only once

    page.get_by_label("What would you like?").select_option("erasure")
    page.get_by_role("button", name="Send my request").click()
    page.get_by_text("Your data was erased and your account is closed.").wait_for()
    assert (
        DataRequest.objects.get(customer=customer, kind="erasure").status == "completed"
    )
    page.close()


def test_a_signed_out_customer_opens_the_emailed_link_and_downloads(
    live_server, browser
):
    """Signed out, the export-ready email's link goes through sign-in to a page whose
    button downloads: the browser does not stay on the sign-in form."""
    reseed_purposes()
    customer = make_account(email="siti@example.com", full_name="Siti Rahma")
    request_open(actor=customer.user, customer=customer, kind="access")
    [message] = [m for m in mail.outbox if "/me/data/download/" in m.body]
    link = next(w for w in message.body.split() if "/me/data/download/" in w)
    token = urlsplit(link).path.rstrip("/").rsplit("/", 1)[-1]

    page = browser.new_page(accept_downloads=True)
    page.goto(live_server.url + urlsplit(link).path)
    assert token not in page.url
    page.get_by_label("Email address").fill("siti@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Your data is ready").wait_for()
    assert token not in page.url
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download my data").click()
    archive = zipfile.ZipFile(io.BytesIO(download_info.value.path().read_bytes()))
    assert "Siti Rahma" in archive.read("my-data.json").decode()
    page.close()
