"""The record of processing activities (GDPR art. 30) for other systems: JSON or CSV
(`format`), for governance roles."""

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts.models import GOVERNANCE_ROLES
from apps.accounts.permissions import role_permission
from apps.compliance.ropa import CSV_COLUMNS, ropa_csv, ropa_get, ropa_json
from apps.core.api import ApiView
from apps.core.replica import replica_reads

Governance = role_permission(*GOVERNANCE_ROLES)


class CsvRenderer(BaseRenderer):
    """`text/csv`: the view hands it the file's text."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        return data.encode(self.charset)


class RopaTransferSerializer(serializers.Serializer):
    to = serializers.CharField(help_text="The system or recipient.")
    kind = serializers.ChoiceField(choices=["system", "recipient"])
    country = serializers.CharField()
    safeguards = serializers.CharField(
        help_text="The transfer safeguard recorded, or `none recorded`."
    )


class RopaActivitySerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    purpose = serializers.CharField()
    legal_basis = serializers.CharField(
        help_text="`consent`, `contract`, `legal_obligation`, `vital_interests`, "
        "`public_task`, `legitimate_interest` (GDPR art. 6(1)(a) to (f))."
    )
    legal_basis_text = serializers.CharField()
    consent_purpose = serializers.CharField(
        help_text="The consent purpose it needs; empty for none."
    )
    data_subjects = serializers.CharField()
    data_categories = serializers.ListField(child=serializers.CharField())
    systems = serializers.ListField(child=serializers.CharField())
    recipients = serializers.ListField(child=serializers.CharField())
    transfers = RopaTransferSerializer(many=True)
    retention = serializers.ListField(
        child=serializers.CharField(),
        help_text="From the linked retention policies; with none linked, what the "
        "linked systems state (`retention_source`).",
    )
    retention_source = serializers.ChoiceField(
        choices=["policies", "systems", "none"],
        help_text="`policies`, `systems` (no policy linked), `none` (nothing linked).",
    )
    security = serializers.ListField(
        child=serializers.CharField(), help_text="The systems' security measures."
    )
    owner = serializers.CharField()
    reviewed_at = serializers.DateField(allow_null=True)
    reviewed_by = serializers.CharField(help_text="The reviewer's username; empty.")
    review_due = serializers.BooleanField(
        help_text="Never reviewed, or last reviewed more than a year ago."
    )


class RopaOutputSerializer(serializers.Serializer):
    controller_country = serializers.CharField(
        help_text="Systems and recipients elsewhere are transfers."
    )
    activities = RopaActivitySerializer(many=True)


class RopaApi(ApiView):
    """The record of processing activities (governance roles): each activity's
    purpose, legal basis, data subjects and categories, systems, recipients, transfers
    to third countries with their safeguards, retention periods, security measures,
    owner and last review. `format=json` (the default) or `format=csv` (one row per
    activity, lists joined with "; ")."""

    permission_classes = [Governance]
    renderer_classes = [JSONRenderer, CsvRenderer]

    class QuerySerializer(serializers.Serializer):
        format = serializers.ChoiceField(
            choices=["json", "csv"], required=False, default="json"
        )

    query_serializers = {"get": QuerySerializer}

    def finalize_response(
        self, request: Request, response: Any, *args: Any, **kwargs: Any
    ) -> Any:
        if isinstance(response, Response) and response.status_code >= 400:
            # An error: JSON in the envelope, whatever the client accepts.
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)

    @extend_schema(
        operation_id="get_ropa",
        responses={
            (200, "application/json"): RopaOutputSerializer,
            (200, "text/csv"): OpenApiResponse(
                OpenApiTypes.STR,
                description=f"Columns: {', '.join(CSV_COLUMNS)}.",
            ),
        },
    )
    def get(self, request: Request) -> Response:
        with replica_reads():
            entries = ropa_get()
        renderer: BaseRenderer
        body: Any
        if self.query["format"] == "csv":
            renderer, body = CsvRenderer(), ropa_csv(entries)
            headers = {"Content-Disposition": 'attachment; filename="ropa.csv"'}
        else:
            renderer = JSONRenderer()
            body = RopaOutputSerializer(ropa_json(entries)).data
            headers = {}
        # `format` decides, whatever the Accept header asked for.
        request.accepted_renderer = renderer
        request.accepted_media_type = renderer.media_type
        return Response(body, headers=headers)
