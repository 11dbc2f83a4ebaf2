"""Reads of import jobs and their refused rows."""

from typing import Any

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.imports.models import ImportJob, ImportRowError


def import_job_list() -> QuerySet[ImportJob]:
    """Every upload, newest first, with who made it."""
    return ImportJob.objects.select_related("created_by")


def import_job_get(*, job_id: Any) -> ImportJob:
    """One upload. Raises NotFound."""
    job = import_job_list().filter(pk=job_id).first()
    if job is None:
        raise NotFound("No such import.")
    return job


def import_row_error_list(*, job: ImportJob) -> QuerySet[ImportRowError]:
    """A job's refused rows, by line: line, field, code and message, no value."""
    return ImportRowError.objects.filter(job=job).order_by("line", "pk")
