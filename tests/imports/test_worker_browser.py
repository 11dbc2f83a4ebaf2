"""A privacy admin in headless Chromium uploads a file; a real Celery worker (Redis
database 7, threads in this process) imports it from the sealed copy in the
database; the page's bar reaches done and the summary shows."""

import uuid

import pytest
from django_otp.plugins.otp_totp.models import TOTPDevice

from apps.accounts.models import Role
from apps.consent.models import Purpose
from apps.customers.models import Customer
from apps.imports import services
from apps.imports.models import ImportChunk, ImportJob, ImportStatus
from tests import brokers
from tests.accounts.factories import PASSWORD, UserFactory
from tests.accounts.helpers import current_code
from tests.imports.test_import_customers import _rows
from tests.imports.test_upload import _csv
from tests.redis import redis_answers

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

BROKER = "redis://127.0.0.1:6379/7"


@pytest.fixture
def worker(settings, monkeypatch):
    if not redis_answers():
        pytest.skip("no Redis on 127.0.0.1:6379")
    queue = f"amanah-test-{uuid.uuid4().hex[:8]}"
    with brokers.thread_worker(BROKER, queue, settings, monkeypatch) as app:
        yield app


def test_an_upload_is_imported_by_a_worker_and_the_bar_reaches_done(
    live_server, browser, worker, tmp_path, monkeypatch
):
    monkeypatch.setattr(services, "BATCH_SIZE", 2)  # several batches
    # A transactional test starts from an empty database: the purpose the file names.
    Purpose.objects.get_or_create(
        code="marketing_email", defaults={"name": "Email offers", "description": "-"}
    )
    admin = UserFactory(username="admin", role=Role.PRIVACY_ADMIN)
    device = TOTPDevice.objects.create(user=admin, name="authenticator", confirmed=True)
    path = tmp_path / "customers.csv"
    path.write_bytes(_csv(_rows()))

    page = browser.new_page()
    page.goto(f"{live_server.url}/imports/")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="One more step").wait_for()
    page.get_by_label("Code").fill(current_code(device))
    page.get_by_role("button", name="Continue").click()

    page.goto(f"{live_server.url}/imports/")
    page.get_by_label("CSV file").set_input_files(str(path))
    page.get_by_role("button", name="Upload and import").click()
    page.wait_for_url("**/imports/*-*/")
    assert page.locator("progress#import-progress").count() == 1
    # The page refreshes itself (no JavaScript) until the run ends.
    page.locator("#import-job[data-status=done]").wait_for(timeout=60_000)
    assert page.locator("progress#import-progress").get_attribute("value") == "100"
    assert page.locator("#import-imported").inner_text() == "3"
    assert page.locator("#import-refused").inner_text() == "2"
    assert page.get_by_role("link", name="Download the refused rows").count() == 1
    page.close()

    job = ImportJob.objects.get()
    assert job.status == ImportStatus.DONE
    assert Customer.objects.count() == 3
    assert not ImportChunk.objects.exists()
