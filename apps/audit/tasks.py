import logging

from celery import shared_task

from apps.audit.selectors import audit_chain_verify

logger = logging.getLogger(__name__)


# Read-only and nightly: acknowledged on receipt, so a long chain may take longer than
# the broker's visibility timeout without being handed to a second worker (a lost run
# is simply the next night's). Hours, not the 10 minutes other tasks get: about 30 µs
# an event, six hours verify some 700 million.
@shared_task(
    name="audit.verify_chain",
    acks_late=False,
    time_limit=6 * 3600,
    soft_time_limit=6 * 3600 - 60,
)
def audit_chain_verify_task() -> bool:
    report = audit_chain_verify()
    if report.ok:
        logger.info("audit.chain_intact", extra={"count": report.count})
    else:
        logger.error(
            "audit.chain_broken", extra={"seq": report.bad_seq, "reason": report.reason}
        )
    return report.ok
