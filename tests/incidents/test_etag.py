"""An incident's version (ETag) and `incident_update(if_match=...)`: a change names
the version it was made on, and is refused (412) once the incident has changed."""

from collections.abc import Callable

import pytest

from apps.accounts.models import Role
from apps.audit.models import AuditEvent
from apps.core.errors import PreconditionFailed
from apps.incidents.models import Incident
from apps.incidents.selectors import incident_etag, incident_get
from apps.incidents.services import incident_transition, incident_update
from tests.accounts.factories import UserFactory
from tests.concurrency import at_once
from tests.incidents.factories import make_incident


def _fresh(incident: Incident) -> Incident:
    return incident_get(incident_id=incident.pk)


@pytest.fixture
def officer(db):
    return UserFactory(username="officer", role=Role.COMPLIANCE_OFFICER)


@pytest.mark.django_db
def test_the_tag_is_the_same_for_every_read_of_one_version(officer):
    incident = make_incident(officer)
    assert incident_etag(incident) == incident_etag(_fresh(incident))
    updated = incident_update(actor=officer, incident=incident, data={"title": "New"})
    assert incident_etag(updated) == incident_etag(_fresh(incident))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        lambda actor, i: incident_update(actor=actor, incident=i, data={"title": "X"}),
        lambda actor, i: incident_transition(
            actor=actor, incident=i, status="contained"
        ),
    ],
    ids=["update", "transition"],
)
def test_every_change_changes_the_tag(officer, change):
    incident = make_incident(officer)
    before = incident_etag(_fresh(incident))
    change(officer, _fresh(incident))
    assert incident_etag(_fresh(incident)) != before


@pytest.mark.django_db
@pytest.mark.parametrize("form", ["{tag}", '"other", {tag}', "*"])
def test_an_update_naming_the_current_version_is_made(officer, form):
    incident = make_incident(officer)
    tag = incident_etag(incident)

    incident_update(
        actor=officer,
        incident=incident,
        data={"title": "Renamed"},
        if_match=form.format(tag=tag),
    )

    assert _fresh(incident).title == "Renamed"


@pytest.mark.django_db
def test_an_update_naming_an_old_version_is_412_and_changes_nothing(officer):
    incident = make_incident(officer, title="First")
    stale = incident_etag(incident)
    incident_update(actor=officer, incident=incident, data={"severity": "low"})
    before = AuditEvent.objects.count()

    with pytest.raises(PreconditionFailed, match="changed since you read it") as raised:
        incident_update(
            actor=officer, incident=incident, data={"title": "Second"}, if_match=stale
        )

    assert raised.value.status == 412
    assert raised.value.code == "stale"
    assert _fresh(incident).title == "First"
    assert AuditEvent.objects.count() == before


@pytest.mark.django_db
def test_a_weak_tag_never_matches(officer):
    incident = make_incident(officer, title="First")
    with pytest.raises(PreconditionFailed):
        incident_update(
            actor=officer,
            incident=incident,
            data={"title": "Second"},
            if_match=f"W/{incident_etag(incident)}",
        )
    assert _fresh(incident).title == "First"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_updates_at_once_with_one_tag_make_one_change():
    officer = UserFactory(username="officer", role=Role.COMPLIANCE_OFFICER)
    incident = make_incident(officer, title="First")
    tag = incident_etag(incident)

    def update(title: str) -> Callable[[], object]:
        return lambda: incident_update(
            actor=officer, incident=incident, data={"title": title}, if_match=tag
        )

    results = at_once([update("Second"), update("Third")])

    refused = [r for r in results if isinstance(r, PreconditionFailed)]
    made = [r for r in results if isinstance(r, Incident)]
    assert (len(refused), len(made)) == (1, 1), results
    assert _fresh(incident).title == made[0].title
    assert AuditEvent.objects.filter(action="incident.updated").count() == 1
