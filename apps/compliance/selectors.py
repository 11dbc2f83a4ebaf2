"""The cockpit's numbers (`/compliance/`), each read from the selectors of the app
that holds it, as counts: a fixed number of queries however many customers, records,
alerts, incidents or requests there are.

Each tile says whether action is due (`urgent`, shown red) and whether anything is
waiting at all (`pending`); the page is all clear when no tile is pending."""

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from apps.audit.selectors import audit_checkpoint_last, audit_verification_last
from apps.compliance.ropa import activity_review_counts
from apps.incidents.models import Audience, Incident
from apps.incidents.selectors import Deadline, incidents_open_nearest_deadline
from apps.monitoring.models import AlertSeverity
from apps.monitoring.selectors import alert_open_counts
from apps.requests.selectors import request_due_counts
from apps.retention.models import DisposalRun, RetentionPolicy, RunStatus
from apps.retention.selectors import disposal_run_last, policy_overdue_counts

# Open alerts of these severities call for action now.
URGENT_SEVERITIES = (AlertSeverity.HIGH,)
# An open legal deadline this close (or passed) calls for action now.
DEADLINE_CLOSE = timedelta(hours=24)
# The chain is verified, and a checkpoint taken, by nightly jobs: older than this, a
# night was missed.
AUDIT_STALE_AFTER = timedelta(days=2)
# Open incidents listed on the cockpit, nearest deadline first (the count is of all).
INCIDENTS_SHOWN = 5


@dataclass(frozen=True)
class RetentionTile:
    policies: list[tuple[RetentionPolicy, int]]  # enabled ones, in run order
    last_run: DisposalRun | None

    @property
    def overdue(self) -> int:
        return sum(n for _, n in self.policies)

    @property
    def run_failed(self) -> bool:
        return self.last_run is not None and self.last_run.status == RunStatus.FAILED

    @property
    def urgent(self) -> bool:
        return self.overdue > 0 or self.run_failed

    @property
    def pending(self) -> bool:
        return self.urgent


@dataclass(frozen=True)
class AlertsTile:
    counts: dict[str, int]  # open alerts per severity, every severity

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def by_severity(self) -> list[tuple[str, str, int, bool]]:
        """(value, label, open alerts, urgent), the most severe first."""
        return [
            (value, label, self.counts[value], value in URGENT_SEVERITIES)
            for value, label in reversed(AlertSeverity.choices)
        ]

    @property
    def urgent(self) -> bool:
        return any(self.counts[s] for s in URGENT_SEVERITIES)

    @property
    def pending(self) -> bool:
        return self.total > 0


@dataclass(frozen=True)
class OpenIncident:
    incident: Incident
    deadline: Deadline | None  # its nearest open deadline
    at: datetime

    @property
    def passed(self) -> bool:
        return self.due_at is not None and self.due_at <= self.at

    @property
    def close(self) -> bool:
        """The deadline has passed or falls within DEADLINE_CLOSE."""
        return self.due_at is not None and self.due_at - self.at <= DEADLINE_CLOSE

    @property
    def audience(self) -> str:
        """Who the deadline says to notify, as the incident page names them."""
        value = self.deadline.audience if self.deadline is not None else ""
        return dict(Audience.choices).get(value, value)

    @property
    def due_at(self) -> datetime | None:
        return self.deadline.due_at if self.deadline is not None else None


@dataclass(frozen=True)
class IncidentsTile:
    incidents: list[OpenIncident]  # every unresolved one, nearest deadline first

    @property
    def total(self) -> int:
        return len(self.incidents)

    @property
    def shown(self) -> list[OpenIncident]:
        return self.incidents[:INCIDENTS_SHOWN]

    @property
    def nearest(self) -> OpenIncident | None:
        """The open incident whose open deadline is due first (None: no deadline)."""
        first = self.incidents[0] if self.incidents else None
        return first if first is not None and first.due_at is not None else None

    @property
    def others(self) -> list[OpenIncident]:
        """The shown ones but the nearest (linked once, above them)."""
        nearest = self.nearest
        return [o for o in self.shown if o is not nearest]

    @property
    def urgent(self) -> bool:
        return self.nearest is not None and self.nearest.close

    @property
    def pending(self) -> bool:
        return self.total > 0


@dataclass(frozen=True)
class RequestsTile:
    overdue: int
    week: int  # due within 7 days, not overdue yet

    @property
    def urgent(self) -> bool:
        return self.overdue > 0

    @property
    def pending(self) -> bool:
        return self.overdue > 0 or self.week > 0


@dataclass(frozen=True)
class AuditTile:
    verification: Any  # .verified_at, .ok, .count, .reason; None: never verified
    checkpoint: Any  # .taken_at, .seq, .hash, .path; None: none taken
    at: datetime

    @property
    def verification_failed(self) -> bool:
        return self.verification is not None and not self.verification.ok

    @property
    def verification_stale(self) -> bool:
        return (
            self.verification is None
            or self.at - self.verification.verified_at > AUDIT_STALE_AFTER
        )

    @property
    def checkpoint_stale(self) -> bool:
        return (
            self.checkpoint is None
            or self.at - self.checkpoint.taken_at > AUDIT_STALE_AFTER
        )

    @property
    def urgent(self) -> bool:
        return (
            self.verification_failed or self.verification_stale or self.checkpoint_stale
        )

    @property
    def pending(self) -> bool:
        return self.urgent


@dataclass(frozen=True)
class RopaTile:
    """Processing activities whose yearly review is due. Never red: a review is
    housekeeping, not a legal deadline; nor does it stop the page being all clear."""

    never: int  # never reviewed
    stale: int  # last reviewed more than a year ago

    @property
    def due(self) -> int:
        return self.never + self.stale


@dataclass(frozen=True)
class Cockpit:
    at: datetime
    retention: RetentionTile
    alerts: AlertsTile
    incidents: IncidentsTile
    requests: RequestsTile
    audit: AuditTile
    ropa: RopaTile

    @property
    def all_clear(self) -> bool:
        tiles = (self.retention, self.alerts, self.incidents, self.requests, self.audit)
        return not any(tile.pending for tile in tiles)


def cockpit_get(*, at: datetime | None = None) -> Cockpit:
    """Every tile of the cockpit, as of `at` (now)."""
    at = at or timezone.now()
    return Cockpit(
        at=at,
        retention=RetentionTile(policy_overdue_counts(at=at), disposal_run_last()),
        alerts=AlertsTile(alert_open_counts()),
        incidents=IncidentsTile(
            [
                OpenIncident(incident, deadline, at)
                for incident, deadline in incidents_open_nearest_deadline()
            ]
        ),
        requests=RequestsTile(**request_due_counts(at=at)),
        audit=AuditTile(audit_verification_last(), audit_checkpoint_last(), at),
        ropa=RopaTile(**activity_review_counts(today=timezone.localdate(at))),
    )
