"""The record of processing activities (GDPR art. 30): seeded from the purposes,
inventory and retention policies; the page, its downloads, edits and reviews."""

import csv
import importlib
import io
import json
from datetime import timedelta

import pytest
from django.apps import apps as django_apps
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEvent
from apps.compliance.models import ProcessingActivity
from apps.compliance.ropa import CSV_COLUMNS, ropa_csv, ropa_get
from apps.compliance.services import RopaError, activity_mark_reviewed, activity_save
from apps.consent.selectors import purpose_list_active
from apps.core.errors import Forbidden
from tests.accounts.helpers import sign_in

pytestmark = pytest.mark.django_db

seed_migration = importlib.import_module(
    "apps.compliance.migrations.0002_seed_activities"
)
URL = reverse("compliance:ropa")


def _entry(code):
    return next(e for e in ropa_get() if e.code == code)


def test_one_activity_per_purpose_and_the_products_own():
    codes = set(ProcessingActivity.objects.values_list("code", flat=True))
    assert codes == {a[0] for a in seed_migration.ACTIVITIES}
    linked = {
        a.consent_purpose.code
        for a in ProcessingActivity.objects.exclude(consent_purpose=None)
    }
    assert linked == {p.code for p in purpose_list_active()}
    assert {
        "customer-accounts",
        "customer-support",
        "delivery",
        "security-monitoring",
        "breach-handling",
        "customer-requests",
        "backups",
    } <= codes


def test_the_record_is_built_from_the_inventory_and_policies():
    sharing = _entry("partner-sharing")
    assert sharing.legal_basis_text == "Consent (GDPR art. 6(1)(a))"
    assert sharing.consent_purpose == "partner_sharing"
    assert [(t.to, t.country, t.safeguards) for t in sharing.transfers] == [
        ("Marketing partner", "SG", "Standard contractual clauses")
    ]
    assert sharing.data_categories == ["Identity", "Contact details"]
    assert "consent-proof: 5 years from consent withdrawn, then delete the records" in (
        sharing.retention
    )
    accounts = _entry("customer-accounts")
    # Systems outside Indonesia (the controller's country) are transfers too; a
    # system has no safeguard recorded.
    assert {(t.to, t.kind, t.safeguards) for t in accounts.transfers} == {
        ("Email provider", "system", "none recorded"),
        ("Payment processor", "system", "none recorded"),
    }
    assert "Payment processor: PCI DSS level 1." in accounts.security
    delivery = _entry("delivery")
    assert delivery.transfers == []  # the delivery partner is in Indonesia
    assert delivery.recipients == [
        "Delivery partner (ID): Delivers orders to your door."
    ]
    backups = _entry("backups")  # no retention policy: the system's own retention
    assert (backups.retention, backups.retention_source) == (
        ["Encrypted backups: 35 days"],
        "systems",
    )
    assert _entry("marketing-email").retention_source == "policies"
    assert all(e.review_due for e in ropa_get())  # never reviewed


def test_the_controllers_country_decides_what_is_a_transfer(settings):
    settings.AMANAH_CONTROLLER_COUNTRY = "SG"
    sharing = _entry("partner-sharing")
    assert [t.to for t in sharing.transfers] == ["Amanah database", "Encrypted backups"]


def test_the_seed_is_reversible_and_keeps_reviewed_activities(privacy_admin):
    activity_mark_reviewed(actor=privacy_admin, code="delivery")
    seed_migration.unseed(django_apps, None)
    assert list(ProcessingActivity.objects.values_list("code", flat=True)) == [
        "delivery"
    ]
    seed_migration.seed(django_apps, None)
    seed_migration.seed(django_apps, None)  # twice: nothing doubles
    assert ProcessingActivity.objects.count() == len(seed_migration.ACTIVITIES)
    sharing = ProcessingActivity.objects.get(code="partner-sharing")
    assert [r.name for r in sharing.recipients.all()] == ["Marketing partner"]


def test_the_record_reads_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    with django_assert_max_num_queries(6):
        ropa_get()


# Reviews and edits


def test_marking_reviewed_clears_the_flag_and_is_audited(privacy_admin):
    activity_mark_reviewed(actor=privacy_admin, code="delivery")
    entry = _entry("delivery")
    assert entry.reviewed_at == timezone.localdate()
    assert entry.reviewed_by == privacy_admin.username
    assert not entry.review_due
    event = AuditEvent.objects.get(action="ropa.activity_reviewed")
    assert event.details["code"] == "delivery"


def test_a_review_older_than_a_year_is_flagged():
    ProcessingActivity.objects.filter(code="delivery").update(
        reviewed_at=timezone.localdate() - timedelta(days=366)
    )
    ProcessingActivity.objects.filter(code="backups").update(
        reviewed_at=timezone.localdate() - timedelta(days=364)
    )
    assert _entry("delivery").review_due
    assert not _entry("backups").review_due


def test_only_privacy_admins_change_the_record(compliance_officer):
    with pytest.raises(Forbidden):
        activity_mark_reviewed(actor=compliance_officer, code="delivery")
    with pytest.raises(Forbidden):
        activity_save(actor=compliance_officer, code="delivery", data={"owner": "X"})
    assert not AuditEvent.objects.filter(action__startswith="ropa.").exists()


def test_the_owner_is_a_role_never_someones_contact_details(privacy_admin):
    with pytest.raises(RopaError) as caught:
        activity_save(
            actor=privacy_admin,
            code="delivery",
            data={"owner": "jane.doe@example.com"},
        )
    assert caught.value.field == "owner"
    assert ProcessingActivity.objects.get(code="delivery").owner == "Head of Logistics"
    assert not AuditEvent.objects.filter(action__startswith="ropa.").exists()


# The page


def test_governance_roles_read_the_page_and_others_do_not(
    client, compliance_officer, support_agent
):
    sign_in(client, support_agent)
    assert client.get(URL).status_code == 403
    sign_in(client, compliance_officer)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Record of processing activities" in html
    assert "Marketing partner (SG): Standard contractual clauses" in html
    assert "Review due" in html
    assert "Review due: 12 activities never reviewed." in html
    assert "Mark reviewed" not in html  # a compliance officer reads only
    response = client.post(reverse("compliance:ropa-reviewed", args=["delivery"]))
    assert response.status_code == 403
    assert ProcessingActivity.objects.get(code="delivery").reviewed_at is None


def test_a_privacy_admin_marks_an_activity_reviewed_on_the_page(client, privacy_admin):
    sign_in(client, privacy_admin)
    assert "Mark reviewed" in client.get(URL).content.decode()
    response = client.post(reverse("compliance:ropa-reviewed", args=["delivery"]))
    assert response.status_code == 302
    assert ProcessingActivity.objects.get(code="delivery").reviewed_by == privacy_admin
    html = client.get(URL).content.decode()
    assert "Review due: 11 activities never reviewed." in html
    missing = client.post(reverse("compliance:ropa-reviewed", args=["nope"]))
    assert missing.status_code == 404


def test_a_privacy_admin_edits_an_activity(client, privacy_admin):
    sign_in(client, privacy_admin)
    edit = reverse("compliance:ropa-edit", args=["delivery"])
    assert client.get(edit).status_code == 200
    body = {
        "name": "Deliveries",
        "purpose": "Delivering orders.",
        "legal_basis": "contract",
        "data_subjects": "Customers",
        "data_categories": ["identity", "address"],
        "owner": "Head of Operations",
        "retention_policies": ["interactions"],
    }
    response = client.post(edit, body)
    assert response.status_code == 302
    activity = ProcessingActivity.objects.get(code="delivery")
    assert activity.owner == "Head of Operations"
    assert list(activity.systems.all()) == []
    event = AuditEvent.objects.get(action="ropa.activity_changed")
    assert event.details["changed"] == [
        "data_categories",
        "owner",
        "purpose",
        "recipients",
        "retention_policies",
        "systems",
    ]
    bad = client.post(edit, {**body, "owner": "+62 812-3456-7890"})
    assert bad.status_code == 400
    assert ProcessingActivity.objects.get(code="delivery").owner == "Head of Operations"


def test_a_privacy_admin_adds_an_activity(client, privacy_admin, compliance_officer):
    sign_in(client, privacy_admin)
    body = {
        "code": "loyalty",
        "name": "Loyalty programme",
        "purpose": "Points for purchases.",
        "legal_basis": "contract",
        "data_subjects": "Members",
        "owner": "Head of Marketing",
    }
    assert client.post(reverse("compliance:ropa-new"), body).status_code == 302
    assert _entry("loyalty").owner == "Head of Marketing"
    assert AuditEvent.objects.filter(action="ropa.activity_created").count() == 1
    again = client.post(reverse("compliance:ropa-new"), body)
    assert again.status_code == 400
    sign_in(client, compliance_officer)
    refused = client.post(reverse("compliance:ropa-new"), {**body, "code": "x"})
    assert refused.status_code == 403


def test_the_page_offers_csv_and_json(client, compliance_officer):
    sign_in(client, compliance_officer)
    response = client.get(URL, {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == CSV_COLUMNS
    assert len(rows) == 1 + ProcessingActivity.objects.count()
    response = client.get(URL, {"format": "json"})
    assert response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["controller_country"] == "ID"
    assert len(body["activities"]) == ProcessingActivity.objects.count()


@pytest.mark.parametrize("start", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_a_spreadsheet_would_run_is_read_as_text(start):
    """OWASP's CSV injection list: a value starting with = + - @, a tab or a carriage
    return is written with a leading quote (the form strips the last two, but the
    record's text can come from elsewhere)."""
    ProcessingActivity.objects.filter(code="delivery").update(
        purpose=f"{start}HYPERLINK(1)"
    )
    rows = list(csv.reader(io.StringIO(ropa_csv(ropa_get()))))
    [row] = [r for r in rows if r[0] == "delivery"]
    assert row[CSV_COLUMNS.index("purpose")] == f"'{start}HYPERLINK(1)"


def test_without_a_policy_the_page_shows_the_systems_retention_labelled(
    client, compliance_officer
):
    sign_in(client, compliance_officer)
    html = client.get(URL).content.decode()
    row = html[html.index('id="activity-backups"') :]
    row = row[: row.index("</tr>")]
    assert "No retention policy linked; the linked systems state:" in row
    assert "Encrypted backups: 35 days" in row
    assert "No retention policy linked</td>" not in html
    # Breach handling links no policy either: its systems say what they keep.
    breach = html[html.index('id="activity-breach-handling"') :]
    breach = breach[: breach.index("</tr>")]
    assert "Email provider: 30 days of logs" in breach


def test_an_activity_linking_nothing_says_so(client, privacy_admin):
    activity = ProcessingActivity.objects.get(code="backups")
    activity.systems.clear()
    entry = _entry("backups")
    assert (entry.retention, entry.retention_source, entry.security) == (
        [],
        "none",
        [],
    )
    sign_in(client, privacy_admin)
    html = client.get(URL).content.decode()
    row = html[html.index('id="activity-backups"') :]
    row = row[: row.index("</tr>")]
    assert "Nothing linked: no retention policy and no system" in row
    assert "No system linked: no security measures recorded." in row
    csv_rows = list(
        csv.DictReader(io.StringIO(client.get(URL, {"format": "csv"}).content.decode()))
    )
    assert (
        next(r for r in csv_rows if r["code"] == "backups")["retention_source"]
        == "none"
    )


def test_the_flag_tells_never_reviewed_from_reviewed_too_long_ago(
    client, compliance_officer
):
    today = timezone.localdate()
    ProcessingActivity.objects.update(reviewed_at=today)
    ProcessingActivity.objects.filter(code="backups").update(reviewed_at=None)
    ProcessingActivity.objects.filter(code__in=["delivery", "marketing-sms"]).update(
        reviewed_at=today - timedelta(days=400)
    )
    sign_in(client, compliance_officer)
    html = client.get(URL).content.decode()
    assert (
        "Review due: 1 activity never reviewed; 2 last reviewed more than a year ago."
        in html
    )
    assert "have not been reviewed in the last year" not in html
    ProcessingActivity.objects.update(reviewed_at=None)
    html = client.get(URL).content.decode()
    total = ProcessingActivity.objects.count()
    assert f"{total} activities never reviewed." in html
    ProcessingActivity.objects.update(reviewed_at=today)
    assert 'id="review-due"' not in client.get(URL).content.decode()


@pytest.mark.parametrize(
    ("basis", "text"),
    [
        ("vital_interests", "Vital interests (GDPR art. 6(1)(d))"),
        ("public_task", "Public task (GDPR art. 6(1)(e))"),
    ],
)
def test_every_lawful_basis_of_article_6_can_be_chosen(
    client, privacy_admin, basis, text
):
    sign_in(client, privacy_admin)
    body = {
        "code": f"basis-{basis.replace('_', '-')}",
        "name": f"Activity on {basis}",
        "purpose": "Test.",
        "legal_basis": basis,
        "data_subjects": "Customers",
        "owner": "Head of Operations",
    }
    assert client.post(reverse("compliance:ropa-new"), body).status_code == 302
    assert _entry(body["code"]).legal_basis_text == text
    assert text in client.get(URL).content.decode()
    bad = client.post(
        reverse("compliance:ropa-new"), {**body, "code": "x-bad", "legal_basis": "whim"}
    )
    assert bad.status_code == 400
