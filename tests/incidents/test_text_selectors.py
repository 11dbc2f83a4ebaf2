"""The incident's versions in other languages, read through selectors."""

import pytest

from apps.core.errors import NotFound
from apps.incidents.selectors import incident_text_get, incident_text_list
from apps.incidents.services import incident_text_save
from tests.accounts.helpers import sign_in
from tests.incidents.factories import make_incident

pytestmark = pytest.mark.django_db

GERMAN = {
    "what_happened": "Ein falsch eingestellter Export zeigte Kontakte.",
    "what_we_are_doing": "Wir haben den Export geschlossen.",
    "what_you_can_do": "Achten Sie auf Nachrichten, die nach Passwörtern fragen.",
    "contact": "datenschutz@amanah.example",
}


def test_an_incidents_versions_and_one_by_language(privacy_admin):
    incident, other = make_incident(privacy_admin), make_incident(privacy_admin)
    text = incident_text_save(
        actor=privacy_admin, incident=incident, language="de", data=GERMAN, create=True
    )
    assert list(incident_text_list(incident=incident)) == [text]
    assert list(incident_text_list(incident=other)) == []
    assert incident_text_get(incident=incident, language="de") == text
    for language in ("id", "", "xx"):
        with pytest.raises(NotFound):
            incident_text_get(incident=incident, language=language)
    with pytest.raises(NotFound):
        incident_text_get(incident=other, language="de")


def test_changing_a_version_that_does_not_exist_says_so(client, privacy_admin):
    incident = make_incident(privacy_admin)
    sign_in(client, privacy_admin)
    response = client.post(
        f"/compliance/incidents/{incident.pk}/",
        {"action": "text_edit", "text_language": "de"},
        follow=True,
    )
    assert "There is no version in this language." in response.content.decode()
