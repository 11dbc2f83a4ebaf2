import re

import pytest
from django.test import Client
from django.urls import reverse

from apps.access.models import AccessLogEntry, FieldPolicy, Interaction, Reveal
from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from tests.access.factories import assign
from tests.accounts.factories import UserFactory
from tests.accounts.helpers import sign_in
from tests.customers.factories import make_customer

pytestmark = pytest.mark.django_db


def test_support_agent_searches_opens_a_case_and_sees_the_customer(
    client, support_agent
):
    customer = make_customer(email="jane@example.com", full_name="Jane Doe")
    sign_in(client, support_agent)
    response = client.post(reverse("staff:desk"), {"email": "jane@example.com"})
    assert response.status_code == 200  # answered on the page: no redirect
    html = response.content.decode()
    assert "J••• D•••" in html
    assert "Jane Doe" not in html

    response = client.post(
        reverse("staff:interaction-open"), {"customer": str(customer.pk)}
    )
    assert response.status_code == 302
    assert Interaction.objects.filter(staff=support_agent, customer=customer).exists()

    page = client.get(reverse("staff:customer", args=[customer.pk])).content.decode()
    assert "Jane Doe" in page  # name in full while assigned
    assert "j•••@example.com" in page
    assert "National id" not in page  # hidden fields are not listed
    assert "Reveal for a few minutes" in page


def test_reveal_form_shows_the_value_and_the_time_left(client, support_agent):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    response = client.post(
        url, {"fields": ["email"], "reason": "Customer asked for a callback"}
    )
    assert response.status_code == 302
    page = client.get(url).content.decode()
    assert "jane@example.com" in page
    ends = Reveal.objects.get().expires_at.strftime("%H:%M")
    assert f"Email until {ends}" in page
    # The minutes left are the countdown script's: a static "N more minutes" would
    # go on claiming them on a page left open.
    assert "more minute" not in page
    assert Reveal.objects.count() == 1


def test_reveal_form_errors_are_shown_and_nothing_is_revealed(client, support_agent):
    customer = make_customer(email="jane@example.com")
    assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    response = client.post(url, {"fields": ["email"], "reason": "short"})
    assert response.status_code == 400
    assert "at least 10 characters" in response.content.decode()
    assert 'value="email" id="id_fields_0" checked>' in response.content.decode()
    assert 'value="phone" id="id_fields_1">' in response.content.decode()
    assert "jane@example.com" not in response.content.decode()
    assert not Reveal.objects.exists()


@pytest.mark.postgres  # the agents' one-statement read is PostgreSQL's
def test_an_agents_customer_page_takes_nine_queries(
    client, support_agent, django_assert_num_queries
):
    customer = make_customer()
    interaction = assign(support_agent, customer)
    sign_in(client, support_agent)
    url = reverse("staff:customer", args=[customer.pk])
    client.get(url)  # the first request stamps the session's last-seen time
    # The session, the user and the device; the customer with its grant, interaction,
    # reveals and data key; the policy; the customer's active restrictions; the
    # access-log row; whether an alert holds the agent's reveals suspended; the
    # agent's reveal of the customer that ended last (the page says it expired).
    with django_assert_num_queries(9):
        page = client.get(url).content.decode()
    assert interaction.contact_alias in page
    assert "more hours" in page
    assert AccessLogEntry.objects.filter(customer=customer).count() == 2


def test_unassigned_customer_page_is_404(client, support_agent):
    customer = make_customer()
    sign_in(client, support_agent)
    assert client.get(reverse("staff:customer", args=[customer.pk])).status_code == 404


def test_delivery_agent_sees_name_and_address_but_no_contact(client, delivery_agent):
    customer = make_customer(address_line="Jl. Melati 7", email="jane@example.com")
    assign(delivery_agent, customer)
    sign_in(client, delivery_agent)
    page = client.get(reverse("staff:customer", args=[customer.pk])).content.decode()
    assert "Jl. Melati 7" in page
    assert "example.com" not in page
    assert "Reveal for a few minutes" not in page


def test_policy_editor_saves_changed_cells_with_an_audit_event(client, privacy_admin):
    sign_in(client, privacy_admin)
    page = client.get(reverse("staff:policy"))
    assert page.status_code == 200
    data = {}
    for cell in FieldPolicy.objects.all():
        key = f"{cell.role}__{cell.category}"
        data[f"v__{key}"] = cell.visibility
        if cell.revealable:
            data[f"r__{key}"] = "on"
    data["v__support_agent__address"] = "hidden"
    response = client.post(reverse("staff:policy"), data)
    assert response.status_code == 302
    assert FieldPolicy.objects.get(
        role="support_agent", category="address"
    ).visibility == ("hidden")
    assert AuditEvent.objects.filter(action="policy.changed").count() == 1


@pytest.mark.parametrize("role", [Role.SUPPORT_AGENT, Role.COMPLIANCE_OFFICER])
def test_policy_editor_is_for_privacy_admins(client, role):
    sign_in(client, UserFactory(username="u", role=role))
    assert client.get(reverse("staff:policy")).status_code == 403


def test_oversight_lists_reveals_for_compliance(
    client, support_agent, compliance_officer
):
    customer = make_customer()
    assign(support_agent, customer)
    sign_in(client, support_agent)
    client.post(
        reverse("staff:customer", args=[customer.pk]),
        {"fields": ["email"], "reason": "Customer asked for a callback"},
    )
    sign_in(client, compliance_officer)
    page = client.get(reverse("staff:oversight")).content.decode()
    assert "Customer asked for a callback" in page
    sign_in(client, support_agent)
    assert client.get(reverse("staff:oversight")).status_code == 403


def test_customers_cannot_use_the_staff_desk(client, customer_user):
    sign_in(client, customer_user)
    assert client.get(reverse("staff:desk")).status_code == 403


def test_the_desk_search_form_is_a_post_with_a_csrf_token(client, support_agent):
    sign_in(client, support_agent)
    html = client.get(reverse("staff:desk")).content.decode()
    form = html[html.index('aria-label="Find a customer"') - 120 :]
    form = form[: form.index("</form>")]
    assert 'method="post"' in form
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'method="get"' not in html


def test_a_desk_search_without_a_csrf_token_is_refused(support_agent):
    make_customer(email="jane@example.com")
    client = Client(enforce_csrf_checks=True)
    sign_in(client, support_agent)
    response = client.post(reverse("staff:desk"), {"email": "jane@example.com"})
    assert response.status_code == 403
    assert not AccessLogEntry.objects.exists()


def test_a_desk_search_with_the_pages_token_finds_the_customer(support_agent):
    make_customer(email="jane@example.com", full_name="Jane Doe")
    client = Client(enforce_csrf_checks=True)
    sign_in(client, support_agent)
    page = client.get(reverse("staff:desk")).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = client.post(
        reverse("staff:desk"),
        {"email": "jane@example.com", "csrfmiddlewaretoken": token},
    )
    assert response.status_code == 200
    assert "J••• D•••" in response.content.decode()
    assert AccessLogEntry.objects.filter(staff=support_agent).count() == 1


@pytest.mark.parametrize("method", ["get", "post"])
@pytest.mark.parametrize(
    "query", ["?email=jane%40example.com", "?phone=%2B6281211112222", "?email="]
)
def test_a_desk_url_carrying_email_or_phone_is_400_naming_the_form(
    client, support_agent, query, method
):
    make_customer(email="jane@example.com", phone="+62 812-1111-2222")
    sign_in(client, support_agent)
    url = reverse("staff:desk") + query
    if method == "post":  # one in the form's URL is refused too, not ignored
        response = client.post(url, {"phone": "+6281299990000"})
    else:
        response = client.get(url)
    assert response.status_code == 400
    html = response.content.decode()
    assert "“Find a customer” form" in html
    assert "POST" in html
    assert "jane" not in html
    assert "1211112222" not in html
    assert not AccessLogEntry.objects.exists()


def test_a_desk_search_without_a_value_is_400_with_the_error(client, support_agent):
    sign_in(client, support_agent)
    response = client.post(reverse("staff:desk"), {"email": " ", "phone": ""})
    assert response.status_code == 400
    assert "Enter an email address or a phone number." in response.content.decode()


def test_governance_roles_search_on_the_desk_too(client, compliance_officer):
    jane = make_customer(email="jane@example.com")
    sign_in(client, compliance_officer)
    response = client.post(
        reverse("staff:desk"), {"phone": "", "email": "JANE@example.com"}
    )
    assert response.status_code == 200
    assert str(jane.pk) in response.content.decode()


def test_the_desk_tells_each_role_whom_it_may_see(
    client, support_agent, compliance_officer
):
    sign_in(client, support_agent)
    page = client.get(reverse("staff:desk")).content.decode()
    assert "You see a customer only while you have an open support case" in page
    sign_in(client, compliance_officer)
    page = client.get(reverse("staff:desk")).content.decode()
    assert "You can look up any customer, without a case" in page
    assert "You see a customer only while" not in page


def test_delivery_agents_have_no_search_on_the_desk(client, delivery_agent):
    make_customer(email="jane@example.com")
    sign_in(client, delivery_agent)
    assert "Find a customer" not in client.get(reverse("staff:desk")).content.decode()
    response = client.post(reverse("staff:desk"), {"email": "jane@example.com"})
    assert response.status_code == 403
    assert not AccessLogEntry.objects.exists()
