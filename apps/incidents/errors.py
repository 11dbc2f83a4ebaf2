from apps.core.errors import Conflict, DomainError


class IncidentError(DomainError):
    code = "incident_invalid"


class NoticeIncomplete(IncidentError):
    code = "notice_incomplete"


class IncidentConflict(Conflict):
    """The incident's state refuses it: resolved, or already recorded."""

    code = "incident_conflict"
