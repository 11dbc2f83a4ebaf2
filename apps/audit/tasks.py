import logging

from celery import shared_task

from apps.audit.selectors import audit_chain_verify

logger = logging.getLogger(__name__)


@shared_task(name="audit.verify_chain")
def audit_chain_verify_task() -> bool:
    report = audit_chain_verify()
    if report.ok:
        logger.info("audit.chain_intact", extra={"count": report.count})
    else:
        logger.error(
            "audit.chain_broken", extra={"seq": report.bad_seq, "reason": report.reason}
        )
    return report.ok
