"""The upload page: a privacy admin's file, sealed at rest, imported by a worker
(eager here; tests/imports/test_worker.py runs a real one) through the command's own
service, with progress, a summary and the refused rows to download."""

import csv
import io
import logging
import tempfile

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from apps.audit.models import AuditEvent
from apps.crypto.errors import IntegrityFailure
from apps.crypto.keys import open_with
from apps.crypto.models import DataKey
from apps.customers.models import Customer
from apps.imports import services, views
from apps.imports.models import ImportChunk, ImportJob, ImportRowError, ImportStatus
from apps.imports.services import import_job_create, import_job_run, import_jobs_cleanup
from apps.imports.tasks import import_job_run_task
from tests.accounts.helpers import sign_in
from tests.customers.factories import CANARY
from tests.errors import error_fields
from tests.imports.test_import_customers import HEADER, _rows


def _csv(rows: list[list[str]], header: list[str] = HEADER) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def _upload(client, body: bytes, *, dry_run: bool = False):
    data = {"file": io.BytesIO(body)}
    data["file"].name = "customers.csv"
    if dry_run:
        data["dry_run"] = "on"
    return client.post(reverse("imports:list"), data)


def _job_summary(job: ImportJob) -> tuple[int, int, int, int]:
    job.refresh_from_db()
    return job.imported, job.updated, job.skipped, job.refused


@pytest.fixture
def admin_client(client, privacy_admin):
    sign_in(client, privacy_admin)
    return client


def test_upload_twice_imports_once_and_refuses_bad_rows_by_line_and_field(
    admin_client, django_capture_on_commit_callbacks, caplog
):
    caplog.set_level(logging.DEBUG)
    with django_capture_on_commit_callbacks(execute=True):
        answer = _upload(admin_client, _csv(_rows()))
    assert answer.status_code == 302
    job = ImportJob.objects.get()
    assert answer["Location"] == reverse("imports:job", args=[job.pk])
    assert job.status == ImportStatus.DONE
    assert _job_summary(job) == (3, 0, 0, 2)
    assert Customer.objects.count() == 3

    page = admin_client.get(answer["Location"])
    text = page.content.decode()
    assert page.status_code == 200
    assert 'value="100"' in text
    assert 'http-equiv="refresh"' not in text
    assert 'id="import-imported">3<' in text
    assert 'id="import-refused">2<' in text

    download = admin_client.get(reverse("imports:errors", args=[job.pk]))
    body = b"".join(download.streaming_content).decode()
    refused = list(csv.DictReader(io.StringIO(body)))
    assert {(r["line"], r["field"]) for r in refused} >= {
        ("4", "full_name"),
        ("5", "country"),
        ("5", "consent_at:marketing_email"),
    }

    with django_capture_on_commit_callbacks(execute=True):
        _upload(admin_client, _csv(_rows()))
    second = ImportJob.objects.order_by("-created_at").first()
    assert _job_summary(second) == (0, 0, 3, 2)
    assert Customer.objects.count() == 3

    listing = admin_client.get(reverse("imports:list")).content.decode()
    assert listing.count(privacy_admin_name(job)) >= 2

    # Never a value: not in the errors kept or downloaded, the page, the logs, the
    # audit trail.
    kept = " ".join(
        f"{e.field} {e.code} {e.message}" for e in ImportRowError.objects.all()
    )
    details = " ".join(str(e.details) for e in AuditEvent.objects.all())
    for value in (*CANARY.values(), "4111", "Citra"):
        for where in (kept, body, text, listing, caplog.text, details):
            assert value not in where
    actions = list(AuditEvent.objects.values_list("action", flat=True))
    assert actions.count("customers.import_uploaded") == 2
    assert actions.count("customers.imported") == 2
    summary = AuditEvent.objects.filter(action="customers.imported").order_by("seq")[0]
    assert summary.details["job"] == str(job.pk)
    # One audit event per batch: no event per customer or consent.
    assert "customer.created" not in actions
    assert "consent.granted" not in actions


def privacy_admin_name(job: ImportJob) -> str:
    return job.created_by.get_username()


def test_a_dry_run_upload_counts_but_writes_nothing(
    admin_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        _upload(admin_client, _csv(_rows()), dry_run=True)
    job = ImportJob.objects.get()
    assert job.dry_run
    assert _job_summary(job) == (3, 0, 0, 2)
    assert not Customer.objects.exists()
    assert not AuditEvent.objects.filter(action="customers.imported").exists()


def test_the_stored_upload_is_ciphertext_and_deleted_after_the_run(
    privacy_admin, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(services, "CHUNK_BYTES", 100)  # several chunks
    body = _csv(_rows())
    sent = []
    monkeypatch.setattr(
        import_job_run_task,
        "delay",
        lambda *args, **kwargs: sent.append((args, kwargs)),
    )
    with django_capture_on_commit_callbacks(execute=True):
        job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    # The task hears the job's id, nothing else.
    assert sent == [((str(job.pk),), {})]
    chunks = list(ImportChunk.objects.filter(job=job).order_by("seq"))
    assert len(chunks) == -(-len(body) // 100)
    stored = b"".join(bytes(c.data) for c in chunks)
    for value in ("ani@example.com", CANARY["email"], "Ani Good", "country"):
        assert value.encode() not in stored
    # Each chunk opens only in its own place: swapped, it fails its check.
    with pytest.raises(IntegrityFailure):
        open_with(job.data_key, bytes(chunks[1].data), services._chunk_aad(job.pk, 0))
    key = job.data_key_id

    import_job_run(job_id=job.pk)

    job.refresh_from_db()
    assert job.status == ImportStatus.DONE
    assert _job_summary(job) == (3, 0, 0, 2)
    assert not ImportChunk.objects.filter(job=job).exists()
    assert DataKey.objects.get(pk=key).destroyed_at is not None


def test_progress_advances_batch_by_batch(privacy_admin, monkeypatch):
    monkeypatch.setattr(services, "CHUNK_BYTES", 64)
    monkeypatch.setattr(services, "BATCH_SIZE", 2)
    rows = [
        ["ID", f"Person {n}", f"p{n}@example.com", "", "", "", "", ""] for n in range(7)
    ]
    body = _csv(rows)
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    seen = []
    save = ImportJob.save

    def spy(self, *args, **kwargs):
        seen.append((self.rows_done, self.bytes_read))
        return save(self, *args, **kwargs)

    monkeypatch.setattr(ImportJob, "save", spy)
    import_job_run(job_id=job.pk)
    done = [rows for rows, _ in seen]
    read = [b for _, b in seen]
    assert [r for r in done if r][:4] == [2, 4, 6, 7]
    assert read == sorted(read)
    assert read[-1] == len(body)
    assert 0 < min(b for b in read if b) < len(body)
    assert _job_summary(job) == (7, 0, 0, 0)
    # One audit event per batch (4) and the summary.
    assert AuditEvent.objects.filter(action="customers.batch_imported").count() == 4


def test_a_bad_header_fails_the_job_naming_the_column(privacy_admin):
    body = _csv([["ID", "x", "y@example.com"]], header=["country", "shoe", "email"])
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "Unknown column 'shoe'" in job.reason
    assert not ImportChunk.objects.filter(job=job).exists()
    assert AuditEvent.objects.filter(action="customers.import_failed").exists()


def test_a_temporary_directory_the_worker_cannot_write_is_said_on_the_job(
    privacy_admin, tmp_path, monkeypatch, caplog
):
    body = _csv(
        [["ID", "Ani", "ani@example.com"]], header=["country", "full_name", "email"]
    )
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with caplog.at_level(logging.ERROR, logger="apps.imports"):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert "set TMPDIR to a writable directory" in job.reason
    assert job.reason.endswith("Nothing was imported.")
    assert "imports.no_workspace" in caplog.messages
    assert not Customer.objects.exists()


def test_a_disk_full_under_the_worker_stops_the_job_and_tells_its_operators(
    privacy_admin, monkeypatch, caplog
):
    """The worker's TMPDIR fills up (tests/imports/test_import_customers.py makes
    SQLite's own error): the job says where it stopped and why, and the operators'
    log hears of it, as the page's reader cannot free the server's disk."""

    def full(self, rows):
        raise services._WorkspaceFailed(
            line=rows[0].line, why="database or disk is full"
        )

    monkeypatch.setattr(services._EmailsSeen, "mark", full)
    body = _csv(
        [["ID", "Ani", "ani@example.com"]], header=["country", "full_name", "email"]
    )
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    with caplog.at_level(logging.ERROR, logger="apps.imports"):
        import_job_run(job_id=job.pk)
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert job.reason.startswith("Stopped at line 2 (its working file in ")
    assert "database or disk is full" in job.reason
    assert "imports.no_workspace" in caplog.messages


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b"country,full_name,email\nID,Ani,ani@example.com\n"
            b"ID,Jos\xe9,jose@example.com\n",
            "Stopped at line 3 (not UTF-8 text: save the file as CSV UTF-8). The rows "
            "before it were read (imported 1, updated 0, skipped 0, refused 0); fix "
            "the file and import it again: rows already imported are skipped.",
        ),
        (
            b"country,full_name\xe9,email\nID,Ani,ani@example.com\n",
            "The header (line 1) is not UTF-8 text: save the file as CSV UTF-8. "
            "Nothing was imported.",
        ),
    ],
)
def test_a_file_not_utf8_says_the_line_on_the_page_as_the_command_does(
    admin_client, django_capture_on_commit_callbacks, body, reason
):
    with django_capture_on_commit_callbacks(execute=True):
        answer = _upload(admin_client, body)
    job = ImportJob.objects.get()
    assert (job.status, job.reason) == (ImportStatus.FAILED, reason)
    page = admin_client.get(answer["Location"]).content.decode()
    assert reason.replace("'", "&#x27;") in page
    assert Customer.objects.count() == job.imported


def test_the_job_page_says_row_or_rows_and_the_list_tells_uploads_apart(
    admin_client, django_capture_on_commit_callbacks, privacy_admin
):
    body = _csv(_rows()[:1])
    with django_capture_on_commit_callbacks(execute=True):
        answer = _upload(admin_client, body)
    page = admin_client.get(answer["Location"]).content.decode()
    # Tasks eager (as under `make run`): the import ran in the upload's request.
    assert ImportJob.objects.get().status == ImportStatus.DONE
    assert 'value="100"' in page
    assert "1 row read" in page
    listing = admin_client.get(reverse("imports:list")).content.decode()
    job = ImportJob.objects.get()
    assert f"{len(body)}\xa0bytes" in listing
    assert job.created_at.strftime("%Y-%m-%d %H:%M:%S") in listing
    assert privacy_admin.get_username() in listing
    assert "customers.csv" not in listing  # a file's name may hold personal data


def test_a_file_over_the_limit_is_refused(admin_client, settings):
    """Within the multipart envelope's allowance the form's service refuses it
    (400); a body larger than the limit and the envelope is refused before it is
    read (413)."""
    settings.AMANAH_IMPORT_MAX_BYTES = 100
    answer = _upload(admin_client, _csv(_rows()))
    assert answer.status_code == 400
    assert "larger than" in answer.content.decode()
    big = _csv(_rows()) + b"ID,x,y@example.com\n" * 5000  # over 64 KB more
    assert len(big) > 100 + views.ENVELOPE_BYTES
    answer = _upload(admin_client, big)
    assert answer.status_code == 413
    assert "larger than" in answer.content.decode()
    assert not ImportJob.objects.exists()


def test_a_malformed_content_length_is_a_400_not_a_500(admin_client):
    """Read as Django reads it: no body, so no file."""
    answer = admin_client.post(
        reverse("imports:list"), {"file": ""}, CONTENT_LENGTH="twelve"
    )
    assert answer.status_code == 400
    assert not ImportJob.objects.exists()


def test_an_upload_without_the_csrf_token_is_refused(privacy_admin):
    """The view is exempted from the middleware's check only to run it itself,
    after choosing the upload handler."""
    client = Client(enforce_csrf_checks=True)
    sign_in(client, privacy_admin)
    answer = _upload(client, _csv(_rows()))
    assert answer.status_code == 403
    assert not ImportJob.objects.exists()
    page = client.get(reverse("imports:list"))
    token = page.context["csrf_token"]
    data = {"file": io.BytesIO(_csv(_rows())), "csrfmiddlewaretoken": str(token)}
    data["file"].name = "customers.csv"
    answer = client.post(reverse("imports:list"), data)
    assert answer.status_code == 302
    assert ImportJob.objects.count() == 1


def test_abandoned_jobs_are_failed_and_their_upload_deleted(privacy_admin):
    from datetime import timedelta

    from django.utils import timezone

    body = _csv(_rows())
    job = import_job_create(actor=privacy_admin, chunks=[body], size=len(body))
    ImportJob.objects.filter(pk=job.pk).update(status=ImportStatus.QUEUED)
    assert import_jobs_cleanup(now=timezone.now() + timedelta(hours=1)) == 0
    assert import_jobs_cleanup(now=timezone.now() + timedelta(hours=25)) == 1
    job.refresh_from_db()
    assert job.status == ImportStatus.FAILED
    assert not ImportChunk.objects.filter(job=job).exists()


@pytest.mark.parametrize("role", ["support_agent", "compliance_officer"])
def test_only_privacy_admins_may_import(client, request, role):
    user = request.getfixturevalue(role)
    sign_in(client, user)
    job_id = "00000000-0000-0000-0000-000000000000"
    assert client.get(reverse("imports:list")).status_code == 403
    assert _upload(client, _csv(_rows())).status_code == 403
    assert client.get(reverse("imports:job", args=[job_id])).status_code == 403
    assert client.get(reverse("imports:errors", args=[job_id])).status_code == 403
    assert not ImportJob.objects.exists()
    nav = client.get(reverse("home"), follow=True).content.decode()
    assert reverse("imports:list") not in nav


def test_privacy_admins_see_the_import_in_the_navigation(admin_client):
    page = admin_client.get(reverse("imports:list"))
    assert page.status_code == 200
    assert f'href="{reverse("imports:list")}"' in page.content.decode()


# The API's own validation, row by row: what POST /api/v1/customers/ refuses, the
# import refuses, naming the same fields.
BAD = [
    # A card number in the notes.
    {"country": "ID", "full_name": "Kartu", "email": "kartu@example.com",
     "notes": "card 4111 1111 1111 1111"},
    # A national id that is a card number, not a NIK.
    {"country": "ID", "full_name": "Nik Bad", "email": "nik@example.com",
     "national_id": "4111111111111111"},
    # A phone that is no phone.
    {"country": "ID", "full_name": "Telpon", "email": "tel@example.com",
     "phone": "12"},
    # A malformed email and date.
    {"country": "ID", "full_name": "Surat", "email": "not-an-email",
     "date_of_birth": "31/02/1990"},
]  # fmt: skip


def test_the_import_refuses_what_the_api_refuses_with_the_same_fields(
    privacy_admin, tmp_path
):
    api = APIClient()
    api.force_authenticate(privacy_admin)
    expected = []
    for row in BAD:
        answer = api.post("/api/v1/customers/", row, format="json")
        assert answer.status_code == 400, answer.content
        expected.append(set(error_fields(answer)))
    assert not Customer.objects.exists()

    header = ["country", "full_name", "email", "notes", "national_id", "phone",
              "date_of_birth"]  # fmt: skip
    body = _csv([[row.get(name, "") for name in header] for row in BAD], header)
    errors: list = []
    result = services.customers_import(
        actor=privacy_admin,
        file=io.StringIO(body.decode()),
        on_error=errors.append,
    )
    assert result.refused == len(BAD)
    got = [
        {e.field for e in errors if e.line == line} for line in range(2, 2 + len(BAD))
    ]
    assert got == expected
    assert not Customer.objects.exists()
