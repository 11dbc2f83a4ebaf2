"""The staff customer page says what the agent can do next; a reveal's end is shown
(live in the browser, "expired" on a reload without JavaScript); while an alert holds
an agent's reveals suspended the page says so, why and who lifts it, and offers no
reveal form."""

import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.timezone import localtime

from apps.access.models import AccessLogEntry, Reveal
from apps.monitoring.models import AlertStatus
from apps.monitoring.services import alert_suspend_reveals
from tests.access.factories import assign
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer
from tests.monitoring.factories import make_alert

pytestmark = pytest.mark.django_db

REASON = "Customer asked for a callback"


def words(html: str) -> str:
    """The page's text, without its tags."""
    return re.sub(r"<[^>]+>", "", html)


def open_page(client, agent, customer) -> str:
    sign_in(client, agent)
    return client.get(reverse("staff:customer", args=[customer.pk])).content.decode()


def test_the_page_says_what_the_agent_can_do_next(client, support_agent):
    customer = make_customer()
    interaction = assign(support_agent, customer)
    html = open_page(client, support_agent, customer)
    assert "What you can do" in html
    text = words(html)
    assert "Reveal Email, Phone in full for up to 10 minutes" in text
    assert "Masked for your role: Email, Phone, Address" in text
    assert reverse("staff:interaction-close", args=[interaction.pk]) in html
    assert "Close the support case</button>" in html


def test_a_live_reveal_names_its_end_for_the_countdown_script(client, support_agent):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": REASON})
    reveal = Reveal.objects.get()
    html = client.get(url).content.decode()
    ends = localtime(reveal.expires_at)
    assert 'id="reveal-timer" data-now="' in html
    assert (
        f'class="revealed" data-revealed data-field="email" '
        f'data-expires-at="{ends.isoformat()}">jane@example.com'
    ) in html
    assert f"Email until {ends:%H:%M}" in html
    assert "js/reveal-countdown.js" in html


def test_each_revealed_field_shows_until_the_reveal_that_opened_it_ends(
    client, support_agent
):
    customer = make_customer(email="jane@example.com", phone="+62 812-5550-0199")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": REASON})
    client.post(url, {"fields": ["phone"], "reason": REASON})
    now = timezone.now().replace(microsecond=0)
    soon, later = now + timedelta(minutes=3), now + timedelta(minutes=8)
    Reveal.objects.filter(fields=["email"]).update(expires_at=soon)
    Reveal.objects.filter(fields=["phone"]).update(expires_at=later)

    html = client.get(url).content.decode()

    def cell(name, ends, value):
        return (
            f'data-field="{name}" data-expires-at="{localtime(ends).isoformat()}">'
            f"{value}"
        )

    assert cell("email", soon, "jane@example.com") in html
    assert cell("phone", later, customer.phone) in html
    # Without JavaScript the page says until when each shows, the earliest first.
    email = f"Email until {localtime(soon):%H:%M}"
    phone = f"Phone until {localtime(later):%H:%M}"
    assert email in html
    assert phone in html
    assert html.index(email) < html.index(phone)

    # After the email's reveal ended, a reload masks it and says it expired, while
    # the phone's still shows.
    Reveal.objects.filter(fields=["email"]).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    html = client.get(url).content.decode()
    assert "jane@example.com" not in html
    assert "Your reveal of Email\n  expired at" in html
    assert cell("phone", later, customer.phone) in html
    assert "Your reveal of Phone" not in html


def test_after_a_reveal_ends_a_reload_says_it_expired(client, support_agent):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": REASON})
    Reveal.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    html = client.get(url).content.decode()
    assert "jane@example.com" not in html
    assert "Your reveal of Email\n  expired at" in html
    assert 'id="reveal-timer"' not in html


def test_suspended_reveals_are_explained_and_not_offered(
    client, support_agent, compliance_officer
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    alert = make_alert(staff=support_agent, severity="high", rule="reveal_volume")
    alert_suspend_reveals(actor=compliance_officer, alert=alert)
    html = open_page(client, support_agent, customer)
    assert "Your reveals are suspended." in html
    assert "compliance officer or privacy admin lifts the suspension" in html
    assert "Reveal for a few minutes" not in html
    assert 'name="reason"' not in html
    # A form posted anyway (an old tab) reveals nothing.
    response = client.post(
        reverse("staff:customer", args=[customer.pk]),
        {"fields": ["email"], "reason": REASON},
    )
    assert response.status_code == 403
    assert not Reveal.objects.filter(status="granted").exists()


def test_a_dismissed_alert_lifts_the_suspension(
    client, support_agent, compliance_officer
):
    customer = make_customer()
    assign(support_agent, customer)
    alert = make_alert(staff=support_agent, severity="high", rule="reveal_volume")
    alert_suspend_reveals(actor=compliance_officer, alert=alert)
    alert.status = AlertStatus.DISMISSED
    alert.save(update_fields=["status"])
    html = open_page(client, support_agent, customer)
    assert "Your reveals are suspended." not in html
    assert "Reveal for a few minutes" in html


def test_the_page_is_headed_by_the_name_the_role_sees_in_full(
    client, support_agent, privacy_admin
):
    customer = make_customer(full_name="Hardy Schleich-Scholl")
    assign(support_agent, customer)
    html = open_page(client, support_agent, customer)
    assert "<h1>Hardy Schleich-Scholl</h1>" in html
    # A privacy admin sees the name masked: the page is headed by the short id.
    html = open_page(client, privacy_admin, customer)
    assert f"<h1>Customer <code>{str(customer.pk)[:8]}…</code></h1>" in html
    assert "Hardy Schleich-Scholl" not in html


def test_a_masked_address_shows_its_city_and_says_so(client, support_agent):
    # The support role's addresses are masked; a masked address keeps its city
    # whole, so the city is shown in full (the page's label, the access log).
    customer = make_customer(address_line="Ketschendorfer Str. 9", city="Coburg")
    assign(support_agent, customer)
    html = open_page(client, support_agent, customer)
    row = re.search(r'<th scope="row">City<br>.*?</tr>', html, re.S).group(0)
    assert "Coburg" in row
    assert '<span class="badge vis-full">full</span>' in row
    assert "vis-masked" not in row
    masked = re.search(r"Masked for your role: ([^.]*)\.", words(html)).group(1)
    assert "Address" in masked.split(", ")
    assert "City" not in masked.split(", ")
    assert "Ketschendorfer" not in html
    assert AccessLogEntry.objects.get().fields["city"] == "full"


def test_a_revealed_field_is_named_and_offered_again_when_it_ends(
    client, support_agent
):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": REASON})
    ends = localtime(Reveal.objects.get().expires_at)
    html = client.get(url).content.decode()
    text = words(html)
    assert "nothing here your role may reveal" not in text
    assert f"Email is revealed until {ends:%H:%M} (UTC)" in text
    assert "Reveal Phone in full" in text
    # Its box is in the form, hidden and not sent, for the script to offer at its
    # end; its "Shown" cell says what it shows then.
    assert (
        '<label class="inline" data-reveal-choice="email" data-label="Email" hidden>'
        '<input type="checkbox" name="fields" value="email" id="id_fields_0" disabled>'
    ) in html
    assert 'data-shown-field="email" data-after="masked"' in html


def test_the_only_revealable_field_revealed_hides_the_form_until_it_ends(
    client, support_agent
):
    customer = make_customer(email="jane@example.com", phone="")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.post(url, {"fields": ["email"], "reason": REASON})
    html = client.get(url).content.decode()
    assert '<section class="card" id="reveal-section" hidden>' in html
    assert '<li id="reveal-offer" hidden>' in html
    assert "nothing here your role may reveal" not in html


def test_without_javascript_the_page_reloads_when_the_first_reveal_ends(
    client, support_agent
):
    customer = make_customer(email="jane@example.com", phone="+62 812-5550-0199")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    assert "http-equiv" not in client.get(url).content.decode()
    client.post(url, {"fields": ["email"], "reason": REASON})
    client.post(url, {"fields": ["phone"], "reason": REASON})
    now = timezone.now()
    Reveal.objects.filter(fields=["email"]).update(
        expires_at=now + timedelta(seconds=90)
    )
    Reveal.objects.filter(fields=["phone"]).update(
        expires_at=now + timedelta(minutes=8)
    )
    html = client.get(url).content.decode()
    refresh = re.search(
        r'<noscript><meta http-equiv="refresh" content="(\d+)"></noscript>', html
    )
    assert refresh is not None
    assert 89 <= int(refresh.group(1)) <= 91
    # The minutes left are live only in the script's countdown.
    assert "more minute" not in html
