"""`{{ event|audit_target }}`: an audit event's target as people read it."""

from django import template

from apps.audit.selectors import audit_target_label

register = template.Library()


@register.filter
def audit_target(event) -> str:
    return audit_target_label(target_type=event.target_type, target_id=event.target_id)
