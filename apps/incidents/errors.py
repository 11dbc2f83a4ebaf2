from apps.core.errors import DomainError


class IncidentError(DomainError):
    code = "incident_invalid"


class NoticeIncomplete(IncidentError):
    code = "notice_incomplete"
