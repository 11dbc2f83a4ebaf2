from celery import shared_task

from apps.imports.services import import_job_run, import_jobs_cleanup


@shared_task(name="imports.run", acks_late=True)
def import_job_run_task(job_id: str) -> None:
    """Import an uploaded file: its job's id only (the file is sealed in the
    database, readable by a worker on any host)."""
    import_job_run(job_id=job_id)


@shared_task(name="imports.cleanup")
def import_jobs_cleanup_task() -> int:
    return import_jobs_cleanup()
