import csv
import io
import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from apps.audit.models import AuditEvent
from apps.consent.models import ConsentEvent, ConsentSource, ConsentState
from apps.customers.models import Customer
from apps.customers.selectors import customer_find_by_email
from apps.imports import services
from tests.customers.factories import CANARY

HEADER = [
    "country",
    "full_name",
    "email",
    "phone",
    "national_id",
    "card_last4",
    "consent:marketing_email",
    "consent_at:marketing_email",
]
GRANTED_AT = "2024-03-01T09:30:00+00:00"


def _rows() -> list[list[str]]:
    return [
        ["ID", "Ani Good", "ani@example.com", "+62 812-3456-7890", "", "4242",
         "granted", GRANTED_AT],
        ["ID", "Budi Good", "budi@example.com", "", "", "", "", ""],
        # Refused: a card number where a name goes (the canary's values around it).
        ["ID", f"{CANARY['full_name']} 4111 1111 1111 1111", CANARY["email"],
         CANARY["phone"], CANARY["national_id"], "", "", ""],
        # Refused: no country, and a consent without its time.
        ["", "Citra Bad", "citra@example.com", "", "", "", "granted", ""],
        ["ID", "Dewi Good", "dewi@example.com", "", "", "", "withdrawn",
         "2023-01-02T00:00:00"],
    ]  # fmt: skip


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _run(*args: str) -> str:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_customers", *args, stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_import_twice_refuses_bad_rows_and_never_duplicates(tmp_path, caplog):
    source = _write(tmp_path / "in.csv", _rows())
    errors = tmp_path / "errors.csv"

    first = _run(str(source), "--errors", str(errors))
    assert (
        first.strip().splitlines()[-1] == "imported 3, updated 0, skipped 0, refused 2"
    )
    assert Customer.objects.count() == 3
    ani = customer_find_by_email(email="ani@example.com")
    assert ani is not None
    assert ani.full_name == "Ani Good"
    assert ani.phone == "+6281234567890"

    with errors.open(newline="") as f:
        refused = list(csv.DictReader(f))
    assert {(r["line"], r["field"]) for r in refused} >= {
        ("4", "full_name"),
        ("5", "country"),
        ("5", "consent_at:marketing_email"),
    }
    text = errors.read_text()
    for value in (*CANARY.values(), "4111", "Citra"):
        assert value not in text
        assert value not in first
        assert value not in caplog.text
    summary = AuditEvent.objects.get(action="customers.imported")
    assert summary.details == {"imported": 3, "updated": 0, "skipped": 0, "refused": 2}

    second = _run(str(source), "--errors", str(errors))
    assert (
        second.strip().splitlines()[-1] == "imported 0, updated 0, skipped 3, refused 2"
    )
    assert Customer.objects.count() == 3
    assert ConsentEvent.objects.count() == 2

    changed = _rows()
    changed[1][1] = "Budi Changed"
    _write(source, changed)
    third = _run(str(source))
    assert (
        third.strip().splitlines()[-1] == "imported 0, updated 1, skipped 2, refused 2"
    )
    budi = customer_find_by_email(email="budi@example.com")
    assert budi is not None
    assert budi.full_name == "Budi Changed"
    assert Customer.objects.count() == 3
    for event in AuditEvent.objects.all():
        for value in CANARY.values():
            assert value not in str(event.details)


def test_consent_is_imported_with_source_import_and_its_original_time(tmp_path):
    _run(str(_write(tmp_path / "in.csv", _rows())))
    ani = customer_find_by_email(email="ani@example.com")
    event = ConsentEvent.objects.get(customer=ani)
    assert event.source == ConsentSource.IMPORT
    assert event.granted is True
    assert event.created_at == datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    state = ConsentState.objects.get(customer=ani)
    assert (state.granted, state.source) == (True, ConsentSource.IMPORT)
    dewi = customer_find_by_email(email="dewi@example.com")
    withdrawn = ConsentEvent.objects.get(customer=dewi)
    assert withdrawn.granted is False
    assert withdrawn.created_at == datetime(2023, 1, 2, tzinfo=UTC)


def test_dry_run_validates_and_counts_but_writes_nothing(tmp_path):
    out = _run(str(_write(tmp_path / "in.csv", _rows())), "--dry-run")
    assert out.strip().splitlines()[-1] == "imported 3, updated 0, skipped 0, refused 2"
    assert not Customer.objects.exists()
    assert not ConsentEvent.objects.exists()
    assert not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["country", "full_name", "email", "shoe_size"], "Unknown column 'shoe_size'"),
        (["country", "full_name"], "no email column"),
        (["country", "email", "consent:no_such_purpose"], "Unknown column"),
    ],
)
def test_a_bad_header_exits_non_zero_and_imports_nothing(tmp_path, header, message):
    rows = [["ID", "Ani Good", "ani@example.com", "x"][: len(header)]]
    with pytest.raises(CommandError, match=message):
        _run(str(_write(tmp_path / "in.csv", rows, header=header)))
    assert not Customer.objects.exists()
    assert not AuditEvent.objects.exists()


def test_batches_commit_and_progress_is_reported(tmp_path):
    rows = [
        ["ID", f"Person {n}", f"p{n}@example.com", "", "", "", "", ""] for n in range(7)
    ]
    out = _run(str(_write(tmp_path / "in.csv", rows)), "--batch-size", "3")
    assert out.strip().splitlines()[-1] == "imported 7, updated 0, skipped 0, refused 0"
    assert Customer.objects.count() == 7


def test_a_blank_cell_on_a_rerun_never_clears_what_is_stored(tmp_path):
    _run(str(_write(tmp_path / "a.csv", [["ID", "Eka Full", "eka@example.com"]])))
    path = tmp_path / "b.csv"
    with path.open("w", newline="") as f:
        f.write("country,full_name,email,phone\nID,,eka@example.com\n")  # short row
    out = _run(str(path))
    assert out.strip().splitlines()[-1] == "imported 0, updated 0, skipped 1, refused 0"
    assert customer_find_by_email(email="eka@example.com").full_name == "Eka Full"


def test_a_row_with_more_fields_than_the_header_is_refused(tmp_path):
    errors = tmp_path / "errors.csv"
    path = _write(
        tmp_path / "in.csv",
        [["ID", "Fajar", "fajar@example.com", "", "", "", "", "", "spill"]],
    )
    out = _run(str(path), "--errors", str(errors))
    assert out.strip().splitlines()[-1] == "imported 0, updated 0, skipped 0, refused 1"
    assert "extra_fields" in errors.read_text()
    assert "spill" not in errors.read_text()
    assert not Customer.objects.exists()


def test_a_file_unreadable_midway_keeps_and_audits_every_row_before(tmp_path):
    """A byte that is not UTF-8 (é in Latin-1) on line 3002, far past any reading
    chunk: the import stops at that very line, with all 3,000 rows before it."""
    path = tmp_path / "in.csv"
    good = [f"ID,Gita {n},g{n}@example.com,{'n' * 40}\n".encode() for n in range(3000)]
    with path.open("wb") as f:
        f.write(b"country,full_name,email,notes\n" + b"".join(good))
        f.write(b"ID,Jos\xe9,h@example.com,\nID,After,after@example.com,\n")
    with pytest.raises(CommandError) as caught:
        _run(str(path), "--batch-size", "700")
    assert str(caught.value) == (
        f"{path}: Stopped at line 3002 (not UTF-8 text: save the file as CSV UTF-8). "
        "The rows before it were read (imported 3000, updated 0, skipped 0, "
        "refused 0); fix the file and import it again: rows already imported are "
        "skipped."
    )
    assert Customer.objects.count() == 3000
    audit = AuditEvent.objects.get(action="customers.imported")
    assert audit.details["imported"] == 3000
    assert audit.details["stopped_at_line"] == 3002


def test_a_header_that_is_not_utf8_is_named_and_nothing_imported(tmp_path):
    path = tmp_path / "in.csv"
    path.write_bytes(b"country,full_name\xe9,email\nID,Ani,ani@example.com\n")
    with pytest.raises(CommandError) as caught:
        _run(str(path))
    assert str(caught.value) == (
        f"{path}: The header (line 1) is not UTF-8 text: save the file as CSV UTF-8. "
        "Nothing was imported."
    )
    assert not Customer.objects.exists()


@pytest.mark.parametrize(
    "header",
    [
        "Country,Email,Full_Name",
        " country , EMAIL ,full_name",
        "\ufeffcountry;email;full_name",  # Excel's CSV UTF-8 in much of Europe
        "country\temail\tfull_name",
    ],
)
def test_header_names_are_trimmed_and_case_folded_and_the_delimiter_found(
    tmp_path, header
):
    delimiter = next((d for d in ";\t" if d in header), ",")
    row = delimiter.join(["ID", "ani@example.com", "Ani, Good"])
    if delimiter == ",":
        row = 'ID,ani@example.com,"Ani, Good"'
    path = tmp_path / "in.csv"
    path.write_bytes(f"{header}\r\n{row}\r\n".encode())
    out = _run(str(path))
    assert out.strip().splitlines()[-1] == "imported 1, updated 0, skipped 0, refused 0"
    assert customer_find_by_email(email="ani@example.com").full_name == "Ani, Good"


def test_an_errors_file_that_cannot_be_written_is_named(tmp_path):
    path = _write(tmp_path / "in.csv", [["ID", "Hana", "hana@example.com"]])
    with pytest.raises(CommandError, match="Cannot write the errors file"):
        _run(str(path), "--errors", str(tmp_path / "missing" / "e.csv"))
    assert not Customer.objects.exists()


def test_lines_ended_by_a_lone_carriage_return_are_read(tmp_path):
    """Old Mac CSV files end lines with CR alone, as a text file's reading allows."""
    path = tmp_path / "in.csv"
    path.write_bytes(b"country,email\rID,cr1@example.com\rID,cr2@example.com\r")
    out = _run(str(path))
    assert out.strip().splitlines()[-1] == "imported 2, updated 0, skipped 0, refused 0"


def test_a_temporary_directory_that_cannot_be_written_is_one_line_not_no_file(
    tmp_path, monkeypatch
):
    path = _write(tmp_path / "c.csv", [])
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    with pytest.raises(CommandError, match="set TMPDIR") as raised:
        _run(str(path))
    assert "No file" not in str(raised.value)
    assert "Nothing was imported" in str(raised.value)


@pytest.mark.parametrize(
    ("count", "pages"),
    [
        (6000, 8),  # a batch in the middle: stopped while reading
        (400, 3),  # the only batch, less than one: stopped at the file's end
    ],
)
def test_a_full_disk_under_the_working_file_stops_with_every_batch_before_kept(
    tmp_path, monkeypatch, count, pages
):
    """SQLite's own "database or disk is full" (its page limit lowered, as a full
    disk would stop it): one line naming the line and TMPDIR, not a traceback, and
    every row of the batches before imported and audited."""
    opened = services._EmailsSeen.__init__

    def small(self):
        opened(self)
        self.db.execute(f"PRAGMA max_page_count = {pages}")

    monkeypatch.setattr(services._EmailsSeen, "__init__", small)
    rows = [["ID", f"Gita {n}", f"g{n}@example.com"] for n in range(count)]
    path = _write(tmp_path / "in.csv", rows, header=["country", "full_name", "email"])
    with pytest.raises(CommandError) as caught:
        _run(str(path), "--batch-size", "500")
    message = str(caught.value)
    line = int(message.split("Stopped at line ")[1].split(" ")[0])
    assert line < count + 2
    assert (line - 2) % 500 == 0
    assert message == (
        f"{path}: Stopped at line {line} (its working file in "
        f"{tempfile.gettempdir()}: database or disk is full). The rows before it "
        f"were read (imported {line - 2}, updated 0, skipped 0, refused 0); free "
        "space there (or set TMPDIR to a larger disk) and import it again: rows "
        "already imported are skipped."
    )
    assert Customer.objects.count() == line - 2
    audit = AuditEvent.objects.get(action="customers.imported")
    assert audit.details["stopped_at_line"] == line


def test_a_temporary_directory_too_full_to_start_in_is_one_line(tmp_path, monkeypatch):
    """The file is made, but SQLite cannot write its first page (a full disk)."""
    connect = sqlite3.connect

    def full(path, **kwargs):
        db = connect(path, **kwargs)
        db.execute("PRAGMA max_page_count = 1")
        return db

    monkeypatch.setattr(services.sqlite3, "connect", full)
    path = _write(tmp_path / "c.csv", [["ID", "Ani", "ani@example.com"]])
    with pytest.raises(CommandError) as raised:
        _run(str(path))
    assert str(raised.value) == (
        "Cannot make the import's working file in "
        f"{tempfile.gettempdir()} (database or disk is full): free space there or "
        "set TMPDIR to a larger disk. Nothing was imported."
    )
    assert not Customer.objects.exists()
