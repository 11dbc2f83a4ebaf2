"""Signed consent receipts: the download, the export, `verify_receipt`, the page."""

import base64
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import dateformat, timezone

from apps.consent.forms import RECEIPT_MAX_BYTES
from apps.consent.models import ConsentEvent
from apps.consent.selectors import consent_receipts_for_customer
from apps.consent.services import consent_record, evidence_hash
from apps.consent.views import BODY_MAX_BYTES
from apps.crypto.signing import jwks
from apps.requests.export import export_contents
from tests.customers.factories import make_customer
from tests.portal.factories import PASSWORD, make_account

pytestmark = pytest.mark.django_db

OTHER_KEY = base64.b64encode(b"\x01" * 32).decode()


@pytest.fixture
def customer():
    customer = make_customer(email="jane@example.com")
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="analytics",
        granted=True,
        source="self_service",
        evidence=evidence_hash(ip="192.0.2.1", user_agent="Firefox"),
    )
    consent_record(
        actor=None,
        customer=customer,
        purpose_code="analytics",
        granted=False,
        source="self_service",
    )
    return customer


@pytest.fixture
def bundle(customer):
    return consent_receipts_for_customer(customer=customer)


def _write(tmp_path, data, name="receipts.json"):
    path = tmp_path / name
    path.write_text(json.dumps(data, indent=2))
    return path


def _verify(path, **options) -> str:
    out = io.StringIO()
    call_command("verify_receipt", str(path), stdout=out, **options)
    return out.getvalue()


def _flip(text: str) -> str:
    """One character changed."""
    return ("B" if text[0] != "B" else "C") + text[1:]


def test_each_receipt_is_signed_and_carries_the_events_evidence_hash(customer, bundle):
    events = ConsentEvent.objects.filter(customer=customer).order_by("pk")
    first, second = bundle["receipts"]
    assert first["type"] == "amanah.consent_receipt"
    assert first["receipt"] == events[0].pk
    assert first["customer"] == str(customer.pk)
    assert first["evidence_hash"] == events[0].evidence_hash != ""
    assert second["evidence_hash"] == ""
    assert (first["decision"], second["decision"]) == ("granted", "withdrawn")
    assert first["signature"]["alg"] == "EdDSA"
    assert first["signature"]["kid"] == jwks()["keys"][0]["kid"]
    assert bundle["keys"].endswith("/.well-known/amanah-signing-keys.json")
    # The same event gives the same receipt, signature and all.
    again = consent_receipts_for_customer(customer=customer)["receipts"]
    assert again == bundle["receipts"]
    assert "jane" not in json.dumps(bundle)


def test_verify_receipt_says_what_a_valid_receipt_attests(tmp_path, customer, bundle):
    out = _verify(_write(tmp_path, bundle["receipts"][0]))
    lines = out.splitlines()
    assert lines[0] == "Valid: receipt, signature verified."
    assert lines[1].startswith(
        f'Customer {customer.pk} granted consent to "analytics" at '
    )
    assert "under privacy notice version 1, by the customer" in lines[1]
    assert bundle["receipts"][0]["evidence_hash"] in lines[1]


def test_verify_receipt_takes_the_downloaded_file_and_the_data_export(
    tmp_path, customer, bundle
):
    out = _verify(_write(tmp_path, bundle))
    assert out.splitlines()[0] == "Valid: 2 receipts, signature verified."
    assert "withdrew consent" in out.splitlines()[2]
    export = export_contents(customer=customer)
    assert _verify(_write(tmp_path, export, "my-data.json")).startswith(
        "Valid: 2 receipts"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda r: r.update(purpose="marketing_email"),
            "signature does not match its content",
        ),
        (
            lambda r: r.update(customer=_flip(r["customer"])),
            "signature does not match its content",
        ),
        (
            lambda r: r["signature"].update(value=_flip(r["signature"]["value"])),
            "signature does not match its content",
        ),
        (lambda r: r.pop("signature"), "is not signed"),
        (lambda r: r.update(type="amanah.audit_checkpoint"), "not a consent receipt"),
    ],
    ids=["purpose", "customer", "signature", "unsigned", "type"],
)
def test_a_tampered_receipt_fails_in_one_line(tmp_path, bundle, change, message):
    receipt = bundle["receipts"][0]
    change(receipt)
    with pytest.raises(CommandError, match=message) as caught:
        _verify(_write(tmp_path, receipt))
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith("Not valid: ")


def test_one_tampered_receipt_in_a_bundle_is_named(tmp_path, bundle):
    bundle["receipts"][1]["decision"] = "granted"
    with pytest.raises(
        CommandError, match=r"^Not valid: Receipt 2 of 2: This consent receipt's "
    ):
        _verify(_write(tmp_path, bundle))


def test_a_receipt_signed_by_another_key_fails(tmp_path, customer, settings):
    settings.AMANAH_SIGNING_KEY = OTHER_KEY
    foreign = consent_receipts_for_customer(customer=customer)["receipts"][0]
    settings.AMANAH_SIGNING_KEY = "nZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ0="
    with pytest.raises(CommandError, match="signed by an unknown key"):
        _verify(_write(tmp_path, foreign))
    # Another key's signature under this installation's kid does not match either.
    own = consent_receipts_for_customer(customer=customer)["receipts"][0]
    foreign["signature"]["kid"] = own["signature"]["kid"]
    with pytest.raises(CommandError, match="does not match"):
        _verify(_write(tmp_path, foreign))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("not json", r"not a consent receipt \(it is not JSON\)"),
        ('{"hello": 1}', "This is not a consent receipt."),
        ('{"receipts": []}', "The file holds no receipts."),
    ],
)
def test_what_is_not_a_receipt_is_said_so(tmp_path, body, message):
    path = tmp_path / "x.json"
    path.write_text(body)
    with pytest.raises(CommandError, match=message):
        _verify(path)


def test_verify_receipt_checks_against_a_copy_of_the_published_keys(
    tmp_path, bundle, client, settings
):
    keys = tmp_path / "keys.json"
    keys.write_bytes(client.get(reverse("signing-keys")).content)
    receipt = _write(tmp_path, bundle["receipts"][0])
    # This installation's key changed: the copy still verifies the old receipt.
    settings.AMANAH_SIGNING_KEY = OTHER_KEY
    with pytest.raises(CommandError, match="unknown key"):
        _verify(receipt)
    assert _verify(receipt, keys=keys).startswith("Valid: receipt")
    other = tmp_path / "other.json"
    other.write_bytes(client.get(reverse("signing-keys")).content)
    with pytest.raises(CommandError, match=r"unknown key \(kid .*\), not in the key"):
        _verify(receipt, keys=other)
    keys.write_text('{"keys": "x"}')
    with pytest.raises(CommandError, match="not a JWKS"):
        _verify(receipt, keys=keys)


# The public page ------------------------------------------------------------------


def _page_post(data, *, client=None, **extra):
    return (client or Client()).post(reverse("receipt-verify"), data, **extra)


def test_the_page_is_public_and_checks_a_pasted_receipt(bundle, customer):
    page = Client().get(reverse("receipt-verify"))
    assert page.status_code == 200
    assert "Check a consent receipt" in page.content.decode()
    response = _page_post({"receipt": json.dumps(bundle["receipts"][0])})
    text = response.content.decode()
    assert response.status_code == 200
    assert "Valid." in text
    event = ConsentEvent.objects.filter(customer=customer).order_by("pk").first()
    when = dateformat.format(timezone.localtime(event.created_at), "j F Y, H:i T")
    kid = bundle["receipts"][0]["signature"]["kid"]
    assert (
        f"<strong>Valid</strong> — Product analytics: granted on {when} by you, "
        f'under notice version 1 (signed by key <code title="{kid}">{kid[:8]}…'
        "</code>)" in text
    )
    # The raw values are kept, folded away, and wrap rather than spill.
    details = text[text.index("<details>") : text.index("</details>")]
    assert str(customer.pk) in details
    assert event.created_at.isoformat() in details
    assert kid in details
    assert "<code>analytics</code>" in details
    assert str(customer.pk) not in text.replace(details, "")
    assert '<ul class="receipts wrap-anywhere">' in text


def test_the_page_names_staff_and_falls_back_to_a_purposes_code(
    customer, support_agent
):
    from apps.consent.receipts import receipt_content
    from apps.crypto.signing import document_sign

    consent_record(
        actor=support_agent,
        customer=customer,
        purpose_code="analytics",
        granted=True,
        source="staff",
    )
    event = ConsentEvent.objects.filter(customer=customer).order_by("pk").last()
    gone = document_sign(
        {**receipt_content(event=event, customer=customer), "purpose": "retired_use"}
    )
    mine = consent_receipts_for_customer(customer=customer)["receipts"][-1]
    text = _page_post({"receipt": json.dumps([mine, gone])}).content.decode()
    assert "— Product analytics: granted on " in text
    assert " by staff on your behalf, under notice version 1" in text
    assert "— retired_use: granted on " in text


def test_the_page_checks_an_uploaded_bundle(bundle):
    upload = SimpleUploadedFile(
        "consent-receipts.json", json.dumps(bundle).encode(), "application/json"
    )
    text = _page_post({"file": upload}).content.decode()
    assert "All 2 receipts were signed by Amanah's key" in text


@pytest.mark.parametrize("part", ["payload", "signature"])
def test_the_page_refuses_a_receipt_changed_by_one_character(bundle, part):
    receipt = bundle["receipts"][0]
    if part == "payload":
        receipt["at"] = receipt["at"].replace("20", "19", 1)
    else:
        receipt["signature"]["value"] = _flip(receipt["signature"]["value"])
    response = _page_post({"receipt": json.dumps(receipt)})
    text = response.content.decode()
    assert response.status_code == 400
    assert "Not valid." in text
    assert "does not match its content: it was altered after it was signed" in text
    assert "Valid." not in text.replace("Not valid.", "")


def test_the_page_refuses_another_keys_receipt_and_what_is_not_one(customer, settings):
    settings.AMANAH_SIGNING_KEY = OTHER_KEY
    foreign = consent_receipts_for_customer(customer=customer)["receipts"][0]
    settings.AMANAH_SIGNING_KEY = "nZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ0="
    response = _page_post({"receipt": json.dumps(foreign)})
    assert response.status_code == 400
    assert "signed by an unknown key" in response.content.decode()
    response = _page_post({"receipt": "hello"})
    assert "it is not JSON" in response.content.decode()
    response = _page_post({"receipt": ""})
    assert "Paste a receipt or upload the file." in response.content.decode()


def _manage(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(  # noqa: S603 - this interpreter, our own arguments
        [sys.executable, "manage.py", *args],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_verify_receipt_run_from_the_shell_prints_one_plain_line(tmp_path, bundle):
    """README: exit 0 "Valid: ...", or exit 1 with one line `Not valid: ...`, not
    Django's `CommandError: ...`."""
    ok = _manage("verify_receipt", str(_write(tmp_path, bundle)))
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.startswith("Valid: 2 receipts, signature verified.\n")
    receipt = bundle["receipts"][0]
    receipt["purpose"] = "marketing_email"
    bad = _manage("verify_receipt", str(_write(tmp_path, receipt, "bad.json")))
    assert bad.returncode == 1
    assert bad.stdout == ""
    assert bad.stderr == (
        "Not valid: This consent receipt's signature does not match its content: "
        "it was altered after it was signed.\n"
    )
    both = _write(tmp_path, {"receipts": [bundle["receipts"][1], receipt]}, "two.json")
    bad = _manage("verify_receipt", str(both))
    assert (bad.returncode, bad.stderr.count("\n")) == (1, 1)
    assert bad.stderr.startswith("Not valid: Receipt 2 of 2: ")
    missing = _manage("verify_receipt", str(tmp_path / "none.json"))
    assert missing.returncode == 1
    assert missing.stderr.startswith("Cannot read ")
    assert "CommandError" not in missing.stderr


def test_the_page_limits_the_size(bundle):
    big = json.dumps({"receipts": bundle["receipts"], "pad": "x" * RECEIPT_MAX_BYTES})
    response = _page_post({"receipt": big})
    assert response.status_code == 400
    assert "over 512 KB" in response.content.decode()
    upload = SimpleUploadedFile("big.json", big.encode(), "application/json")
    response = _page_post({"file": upload})
    assert "over 512 KB" in response.content.decode()


def test_the_page_needs_its_csrf_token(bundle):
    client = Client(enforce_csrf_checks=True)
    response = _page_post({"receipt": json.dumps(bundle["receipts"][0])}, client=client)
    assert response.status_code == 403


# The customer's download ----------------------------------------------------------


def test_the_customers_download_is_signed_receipts_that_verify(client, tmp_path):
    me = make_account()
    assert (
        client.post(
            reverse("portal:login"), {"email": "siti@example.com", "password": PASSWORD}
        ).status_code
        == 302
    )
    client.post(reverse("portal:consent-toggle", args=["analytics"]), {"granted": "1"})
    page = client.get(reverse("portal:consents")).content.decode()
    assert reverse("receipt-verify") in page
    response = client.get(reverse("portal:receipts"))
    path = tmp_path / "consent-receipts.json"
    path.write_bytes(response.content)
    out = _verify(path)
    assert out.startswith("Valid: receipt")
    assert f'Customer {me.pk} granted consent to "analytics"' in out


def test_the_readmes_offline_check_runs_as_written(tmp_path, bundle, client):
    """The README's few lines of Python, with nothing of Amanah's, verify a receipt
    and refuse it changed."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("Offline, with nothing but `cryptography`") :]
    code = section[section.index("```python\n") + 10 : section.index("```\n", 10)]
    (tmp_path / "amanah-signing-keys.json").write_bytes(
        client.get("/.well-known/amanah-signing-keys.json").content
    )
    receipt = bundle["receipts"][0]
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    run = [sys.executable, "-c", code]
    ok = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert ok.returncode == 0, ok.stderr
    receipt["purpose"] = "marketing_email"
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    bad = subprocess.run(run, cwd=tmp_path, capture_output=True, text=True, check=False)  # noqa: S603
    assert "InvalidSignature" in bad.stderr


# Crafted input, size and rate ------------------------------------------------------


def _surrogate_receipt(bundle) -> str:
    """A receipt under this installation's kid whose text holds a lone surrogate,
    which has no UTF-8 (JSON's escape lets it through)."""
    receipt = bundle["receipts"][0]
    receipt["purpose"] = "\ud800"
    return json.dumps(receipt)  # ensure_ascii: "\\ud800"


def test_the_page_says_not_valid_to_crafted_input(bundle):
    response = _page_post({"receipt": "[" * 100000})
    assert response.status_code == 400
    assert "Not valid." in response.content.decode()
    assert "nested too deep" in response.content.decode()
    response = _page_post({"receipt": _surrogate_receipt(bundle)})
    assert response.status_code == 400
    assert "holds text that is not valid Unicode" in response.content.decode()
    receipt = bundle["receipts"][1]
    receipt["signature"]["kid"] = "\ud800"
    response = _page_post({"receipt": json.dumps(receipt)})
    assert response.status_code == 400
    assert "signature is malformed" in response.content.decode()


def test_verify_receipt_says_not_valid_to_crafted_input(tmp_path, bundle):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000)
    with pytest.raises(CommandError, match="nested too deep"):
        _verify(deep)
    odd = tmp_path / "odd.json"
    odd.write_text(_surrogate_receipt(bundle))
    with pytest.raises(CommandError, match=r"^Not valid: .*not valid Unicode"):
        _verify(odd)
    done = subprocess.run(  # noqa: S603 - this interpreter, our own arguments
        [sys.executable, "manage.py", "verify_receipt", str(odd)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "not valid Unicode" in done.stderr
    assert "Traceback" not in done.stderr


def test_the_page_refuses_a_body_too_big_before_reading_it(monkeypatch):
    from django.http import HttpRequest

    def unread(self):
        raise AssertionError("the body was read")

    monkeypatch.setattr(HttpRequest, "_load_post_and_files", unread)
    upload = SimpleUploadedFile(
        "big.json", b" " * (BODY_MAX_BYTES + 1), "application/json"
    )
    response = _page_post({"file": upload})
    assert response.status_code == 413
    text = response.content.decode()
    assert "a receipt file is at most 512 KB" in text
    assert "Not valid." not in text


def test_the_page_limits_checks_per_client_address(bundle, settings):
    from django.core.cache import cache

    cache.clear()
    settings.AMANAH_RECEIPT_VERIFY_RATE = "2/minute"
    receipt = {"receipt": json.dumps(bundle["receipts"][0])}
    for _ in range(2):
        assert _page_post(receipt, REMOTE_ADDR="192.0.2.7").status_code == 200
    refused = _page_post(receipt, REMOTE_ADDR="192.0.2.7")
    assert refused.status_code == 429
    assert int(refused["Retry-After"]) >= 1
    assert "Too many checks from your address" in refused.content.decode()
    assert _page_post(receipt, REMOTE_ADDR="192.0.2.8").status_code == 200
    assert (
        Client().get(reverse("receipt-verify"), REMOTE_ADDR="192.0.2.7").status_code
        == 200
    )
    cache.clear()


def test_the_page_checks_uncounted_while_the_cache_is_down(
    bundle, settings, monkeypatch, caplog
):
    """The limit protects the page; with Redis down the check goes on (no 500)."""
    from redis.exceptions import ConnectionError as RedisConnectionError

    from apps.consent.views import ReceiptVerifyThrottle

    calls = []

    class Down:
        def get(self, key, default=None):
            calls.append(key)
            raise RedisConnectionError("down")

        def set(self, *args, **kwargs):
            raise RedisConnectionError("down")

    monkeypatch.setattr(ReceiptVerifyThrottle, "cache", Down())
    monkeypatch.setattr(ReceiptVerifyThrottle, "uncounted_until", 0.0)
    settings.AMANAH_RECEIPT_VERIFY_RATE = "1/minute"
    receipt = {"receipt": json.dumps(bundle["receipts"][0])}
    for _ in range(3):
        response = _page_post(receipt, REMOTE_ADDR="192.0.2.9")
        assert response.status_code == 200
        assert "Valid" in response.content.decode()
    assert caplog.messages.count("consent.receipt_verify_uncounted") == 1
    assert len(calls) == 1  # the next checks did not wait for the cache again
    assert "192.0.2.9" not in caplog.text


def test_a_receipt_signed_before_the_key_was_replaced_verifies_when_retired(
    tmp_path, customer, settings
):
    settings.AMANAH_SIGNING_KEY = OTHER_KEY
    old = consent_receipts_for_customer(customer=customer)["receipts"][0]
    old_public = base64.b64encode(
        Ed25519PrivateKey.from_private_bytes(b"\x01" * 32)
        .public_key()
        .public_bytes_raw()
    ).decode()
    settings.AMANAH_SIGNING_KEY = "nZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ2dnZ0="
    assert _page_post({"receipt": json.dumps(old)}).status_code == 400
    settings.AMANAH_SIGNING_PUBLIC_KEYS_RETIRED = old_public
    kids = [key["kid"] for key in jwks()["keys"]]
    assert kids[1:] == [old["signature"]["kid"]]
    response = _page_post({"receipt": json.dumps(old)})
    assert response.status_code == 200
    assert "Valid." in response.content.decode()
    assert "Valid: receipt" in _verify(_write(tmp_path, old))


# The customer's history ------------------------------------------------------------


def test_the_customers_history_says_your_objection_not_the_customers(client):
    me = make_account(email="me@example.com")
    consent_record(
        actor=None,
        customer=me,
        purpose_code="marketing_email",
        granted=False,
        source="objection",
    )
    client.post(
        reverse("portal:login"), {"email": "me@example.com", "password": PASSWORD}
    )
    text = client.get(reverse("portal:consents")).content.decode()
    assert "<td>Your objection to direct marketing</td>" in text
    assert "The customer&#x27;s objection" not in text
    event = ConsentEvent.objects.get(customer=me)
    assert event.source == "objection"  # the stored value is unchanged
