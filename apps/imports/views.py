import csv
from collections.abc import Iterator

from django.conf import settings
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect
from django.utils.decorators import method_decorator
from django.views import View
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.generic import TemplateView

from apps.accounts.models import Role
from apps.accounts.permissions import RoleRequiredMixin
from apps.core.errors import DomainError, NotFound
from apps.core.forms import form_add_domain_error
from apps.imports.forms import ImportUploadForm
from apps.imports.selectors import (
    import_job_get,
    import_job_list,
    import_row_error_list,
)
from apps.imports.services import import_job_create

JOBS_SHOWN = 50
# The multipart envelope around the file (boundaries, the other fields).
ENVELOPE_BYTES = 64 * 1024


class _InMemoryUpload(MemoryFileUploadHandler):
    """The upload held in memory whatever its size (the request is refused above
    AMANAH_IMPORT_MAX_BYTES first): personal data never spooled in plain to a
    temporary file; the service seals it into the database."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding):
        self.activated = True


@method_decorator(csrf_exempt, name="dispatch")  # checked in post(), see there
class ImportListView(RoleRequiredMixin, TemplateView):
    """Upload a CSV file of existing customers (optionally a dry run), and the
    uploads so far: who, when, how far, the counts."""

    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "imports/list.html"

    def get_context_data(self, form=None, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            form=form or ImportUploadForm(),
            jobs=import_job_list()[:JOBS_SHOWN],
            max_mb=settings.AMANAH_IMPORT_MAX_BYTES // (1 << 20),
        )
        return context

    def post(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:  # as Django reads it: a bad header counts as no body
            length = 0
        if length > settings.AMANAH_IMPORT_MAX_BYTES + ENVELOPE_BYTES:
            form = ImportUploadForm()
            form.cleaned_data = {}  # unbound (the body is not read): add_error needs it
            form.add_error(
                "file",
                f"The file is larger than "
                f"{settings.AMANAH_IMPORT_MAX_BYTES // (1 << 20)} MB.",
            )
            return self.render_to_response(self.get_context_data(form=form), status=413)
        # Upload handlers can only be changed before the body is read, which the
        # CSRF check does: so the check runs here, after the change.
        request.upload_handlers = [_InMemoryUpload(request)]
        return csrf_protect(self._upload)(request)

    def _upload(self, request):
        form = ImportUploadForm(request.POST, request.FILES)
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                job = import_job_create(
                    actor=request.user,
                    chunks=upload.chunks(),
                    size=upload.size,
                    dry_run=form.cleaned_data["dry_run"],
                )
            except DomainError as exc:
                form_add_domain_error(form, exc)
            else:
                return redirect("imports:job", job_id=job.pk)
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ImportJobView(RoleRequiredMixin, TemplateView):
    """One upload: a progress bar while it runs (the page refreshes itself), then
    its summary and its refused rows to download."""

    allowed_roles = (Role.PRIVACY_ADMIN,)
    template_name = "imports/job.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        try:
            context["job"] = import_job_get(job_id=kwargs["job_id"])
        except NotFound:
            raise Http404 from None
        return context


class _Echo:
    def write(self, value: str) -> str:
        return value


class ImportErrorsView(RoleRequiredMixin, View):
    """An upload's refused rows as CSV: line, field, code, message; never a value."""

    allowed_roles = (Role.PRIVACY_ADMIN,)

    def get(self, request, job_id):
        try:
            job = import_job_get(job_id=job_id)
        except NotFound:
            raise Http404 from None
        writer = csv.writer(_Echo())

        def lines() -> Iterator[str]:
            yield writer.writerow(["line", "field", "code", "message"])
            for error in import_row_error_list(job=job).iterator():
                yield writer.writerow(
                    [error.line, error.field, error.code, error.message]
                )

        response = StreamingHttpResponse(lines(), content_type="text/csv")
        response["Content-Disposition"] = (
            f'attachment; filename="import-{job.pk}-errors.csv"'
        )
        return response
