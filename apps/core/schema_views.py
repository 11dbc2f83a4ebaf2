"""The schema's URLs: `/api/schema/` (JSON unless YAML is asked for) and
`/api/schema.json`. Apart from apps.core.schema, which DRF's settings import while
drf-spectacular's views import DRF's settings."""

from drf_spectacular.renderers import (
    OpenApiJsonRenderer,
    OpenApiJsonRenderer2,
    OpenApiYamlRenderer,
    OpenApiYamlRenderer2,
)
from drf_spectacular.views import SpectacularAPIView, SpectacularJSONAPIView


class SchemaApi(SpectacularAPIView):
    """The OpenAPI schema: JSON, or YAML when asked for with
    `Accept: application/vnd.oai.openapi` (or `application/yaml`)."""

    renderer_classes = [
        OpenApiJsonRenderer,
        OpenApiJsonRenderer2,
        OpenApiYamlRenderer,
        OpenApiYamlRenderer2,
    ]


class SchemaJsonApi(SpectacularJSONAPIView):
    """The OpenAPI schema as JSON, at a URL that says so (`/api/schema.json`)."""
