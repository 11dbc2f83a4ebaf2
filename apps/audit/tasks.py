import logging

from celery import shared_task

from apps.audit.models import ChainVerification
from apps.audit.selectors import audit_chain_verify
from apps.audit.services import audit_checkpoint_write, chain_verification_record

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
    chain_verification_record(report=report, source=ChainVerification.Source.TASK)
    if report.ok:
        logger.info("audit.chain_intact", extra={"count": report.count})
    else:
        logger.error(
            "audit.chain_broken", extra={"seq": report.bad_seq, "reason": report.reason}
        )
    return report.ok


# Hourly (beat): a signed checkpoint of the chain's head, written to
# AMANAH_AUDIT_CHECKPOINT_DIR. A lost run is the next hour's.
@shared_task(name="audit.write_checkpoint", acks_late=False)
def audit_checkpoint_write_task() -> str:
    return audit_checkpoint_write().path
