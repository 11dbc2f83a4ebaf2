"""The report an authority expects, per regime, drafted from the incident: GDPR
art. 33(3) (and the UK GDPR's), UU PDP art. 46(2), and the same headings for the other
authorities. A draft is text an officer edits before marking it sent
(`services.authority_report_save`, `authority_report_send`)."""

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from apps.customers.registry import DataCategory
from apps.incidents.errors import IncidentError
from apps.incidents.models import Audience, AuthorityReport, Incident
from apps.incidents.selectors import (
    Deadline,
    affected_counts,
    affected_erased_counts,
    authority_report_find,
    deadlines_for,
    incident_erasure_cutoff,
)


@dataclass(frozen=True)
class Heading:
    key: str
    title: str


GDPR = (
    Heading(
        "nature",
        "(a) The nature of the breach, the categories and approximate number of "
        "people concerned, and the categories and approximate number of personal "
        "data records concerned",
    ),
    Heading(
        "contact",
        "(b) The name and contact details of the data protection officer or other "
        "contact point",
    ),
    Heading("consequences", "(c) The likely consequences of the breach"),
    Heading(
        "measures",
        "(d) The measures taken or proposed to address the breach, including, where "
        "appropriate, measures to mitigate its possible adverse effects",
    ),
    Heading("delay", "Reasons for the delay, if notified after 72 hours (art. 33(1))"),
)
UU_PDP = (
    Heading(
        "disclosed", "(a) The personal data disclosed (Data Pribadi yang terungkap)"
    ),
    Heading(
        "when_how",
        "(b) When and how the personal data was disclosed (kapan dan bagaimana Data "
        "Pribadi terungkap)",
    ),
    Heading(
        "handling",
        "(c) The efforts to handle and recover from the disclosure (upaya penanganan "
        "dan pemulihan)",
    ),
    Heading("contact", "Contact point"),
)
OTHER = (
    Heading("nature", "Nature of the breach, people and records concerned"),
    Heading("contact", "Contact point"),
    Heading("consequences", "Likely consequences"),
    Heading("measures", "Measures taken or proposed"),
)
FORMS: dict[str, tuple[str, tuple[Heading, ...]]] = {
    "eu-gdpr-authority": ("GDPR art. 33(3)", GDPR),
    "uk-gdpr-authority": ("UK GDPR art. 33(3)", GDPR),
    "id-uupdp-authority": ("UU No. 27/2022 (PDP) art. 46(2)", UU_PDP),
}


@dataclass(frozen=True)
class Report:
    incident: Incident
    deadline: Deadline
    basis: str
    sections: list[tuple[str, str, str]]  # key, heading, text
    saved: AuthorityReport | None
    prepared_at: datetime

    @property
    def sent(self) -> bool:
        return self.saved is not None and self.saved.sent_at is not None

    @property
    def notified_apart(self) -> bool:
        """The deadline's notification was recorded by hand, not by sending this
        report: it cannot be marked sent, and its text is a follow-up record."""
        return not self.sent and self.deadline.notified_at is not None

    @property
    def sent_on(self) -> datetime | None:
        """When the report went to the authority (the notification's time)."""
        if not self.sent or self.saved is None or self.saved.notification is None:
            return None
        return self.saved.notification.notified_at

    @property
    def controller(self) -> str:
        return controller_name()


def controller_name() -> str:
    """The controller named on reports: AMANAH_CONTROLLER_NAME, or "the controller"
    until it is set."""
    return settings.AMANAH_CONTROLLER_NAME.strip() or "the controller"


def report_headings(rule_code: str) -> tuple[str, tuple[Heading, ...]]:
    return FORMS.get(rule_code, ("", OTHER))


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "not known"
    local = timezone.localtime(moment)
    return f"{local:%Y-%m-%d %H:%M} ({settings.TIME_ZONE})"


def report_draft_sections(*, incident: Incident, deadline: Deadline) -> dict[str, str]:
    """Each heading's text, prefilled from the incident: its times, systems and data
    categories, how many people (those erased since it occurred among them, those
    erased before it apart), its risk reasoning, contact, and what was done (the
    timeline)."""
    counts = affected_counts(incident=incident)
    erased = affected_erased_counts(incident=incident)
    living = sum(counts.values())
    countries = sorted({country for country, _ in counts})
    categories = [str(DataCategory(c).label) for c in incident.data_categories]
    listed = ", ".join(categories) or "not yet established"
    systems = ", ".join(incident.systems) or "not yet established"
    people = (
        f"About {deadline.affected:,} people in {deadline.jurisdiction} "
        f"({living:,} in all, in {len(countries)} "
        f"{'country' if len(countries) == 1 else 'countries'}: "
        f"{', '.join(countries) or 'none'})."
    )
    if erased["since_incident"]:
        people += (
            f" Of these, {erased['since_incident']:,} customers whose data was held "
            "when it occurred have since been erased; no one is left to tell them."
        )
    if erased["before_incident"]:
        people += (
            f" {erased['before_incident']:,} customers the selection matched were "
            f"erased before it occurred ({_when(incident_erasure_cutoff(incident))}) "
            "and are not counted: their data was no longer held."
        )
    records = (
        f"Records concerned: about {living:,} customer records, holding: {listed}."
    )
    times = (
        f"It occurred {_when(incident.occurred_at)}, was detected "
        f"{_when(incident.detected_at)}, and we became aware "
        f"{_when(incident.aware_at)}"
        + (
            f"; contained {_when(incident.contained_at)}"
            if incident.contained_at
            else ""
        )
        + "."
    )
    nature = "\n".join(
        part
        for part in (
            f"{incident.get_kind_display()}, severity "
            f"{incident.get_severity_display().lower()}: {incident.title}.",
            incident.what_happened,
            times,
            f"Systems involved: {systems}.",
            people,
            records,
        )
        if part
    )
    actions = "\n".join(
        f"{_when(entry.at)}: {entry.text}" for entry in incident.timeline.all()
    )
    measures = "\n".join(
        part
        for part in (
            incident.what_we_are_doing,
            f"What people can do: {incident.what_you_can_do}"
            if incident.what_you_can_do
            else "",
            f"Actions so far:\n{actions}" if actions else "",
        )
        if part
    )
    consequences = f"Risk assessed: {incident.get_risk_level_display()}."
    if incident.encrypted_keys_safe:
        consequences += " The data was encrypted and the keys were not taken."
    if incident.risk_reasoning:
        consequences += f"\n{incident.risk_reasoning}"
    contact = (
        f"{controller_name()}. Data protection officer or other contact point: "
        f"{incident.contact or 'not yet given'}"
    )
    late = deadline.due_at is not None and timezone.now() > deadline.due_at
    return {
        "nature": nature,
        "contact": contact,
        "consequences": consequences,
        "measures": measures or "not yet recorded",
        "delay": "" if not late else "The notification is made after 72 hours because ",
        "disclosed": f"{listed}.\n{people}\n{records}",
        "when_how": "\n".join(p for p in (times, incident.what_happened) if p)
        + f"\nSystems involved: {systems}.",
        "handling": measures or "not yet recorded",
    }


def authority_report_get(*, incident: Incident, rule_code: str) -> Report:
    """The report for one of the incident's authority deadlines: as saved, or the
    draft. Raises IncidentError when the rule is none of its authority deadlines."""
    deadline = next(
        (d for d in deadlines_for(incident=incident) if d.rule_code == rule_code),
        None,
    )
    if deadline is None or deadline.audience != Audience.AUTHORITY:
        raise IncidentError("Not an authority deadline of this incident.", field="rule")
    basis, headings = report_headings(rule_code)
    saved = authority_report_find(incident=incident, rule_code=rule_code)
    drafted = report_draft_sections(incident=incident, deadline=deadline)
    texts = saved.sections if saved is not None else {}
    return Report(
        incident=incident,
        deadline=deadline,
        basis=basis or deadline.legal_source,
        sections=[
            (h.key, h.title, texts.get(h.key, drafted.get(h.key, ""))) for h in headings
        ],
        saved=saved,
        prepared_at=saved.updated_at if saved is not None else timezone.now(),
    )
