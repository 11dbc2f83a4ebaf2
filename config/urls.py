from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularSwaggerSplitView

from apps.access.api_urls import contact_urls, customer_urls, interaction_urls
from apps.accounts.views import HomeView
from apps.consent.api_urls import customer_urls as customer_consent_urls
from apps.consent.views import ReceiptVerifyView
from apps.core import api_errors
from apps.core.schema_views import SchemaApi, SchemaJsonApi
from apps.core.views import favicon
from apps.crypto.views import SigningKeysView
from apps.incidents.views import StatusFeedView, StatusPageView
from apps.portal.views import UnsubscribeView
from apps.retention.api_urls import customer_urls as customer_erase_urls
from apps.retention.views import DataPolicyView

# /api/v1/customers/: reading a customer is access's (who may see whom, logged); the
# apps above add what they do to one, each route in the app that owns it.
customer_routes = [
    *customer_urls,
    *customer_erase_urls,
    *customer_consent_urls,
]

api_v1 = [
    path("auth/", include("apps.accounts.api_urls")),
    path("customers/", include(customer_routes)),
    path("interactions/", include(interaction_urls)),
    path("contact/", include(contact_urls)),
    path("consent/", include("apps.consent.api_urls")),
    path("incidents/", include("apps.incidents.api_urls")),
    path("requests/", include("apps.requests.api_urls")),
    path("inventory/", include("apps.inventory.api_urls")),
    path("alerts/", include("apps.monitoring.api_urls")),
    path("ropa/", include("apps.compliance.api_urls")),
    path("webhooks/", include("apps.webhooks.api_urls")),
]

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("accounts/", include("apps.accounts.urls")),
    path("staff/", include("apps.access.urls")),
    path("me/", include("apps.portal.urls")),
    # Outside /me/: unsubscribe links work without signing in.
    path("u/<str:token>/", UnsubscribeView.as_view(), name="unsubscribe"),
    path("compliance/", include("apps.compliance.urls")),
    path("compliance/", include("apps.audit.urls")),
    path("compliance/", include("apps.retention.urls")),
    path("compliance/incidents/", include("apps.incidents.urls")),
    path("compliance/requests/", include("apps.requests.urls")),
    path("compliance/inventory/", include("apps.inventory.urls")),
    path("compliance/alerts/", include("apps.monitoring.urls")),
    path("webhooks/", include("apps.webhooks.urls")),
    path("imports/", include("apps.imports.urls")),
    path("privacy/", DataPolicyView.as_view(), name="data-policy"),
    path("status/", StatusPageView.as_view(), name="status"),
    path("status.json", StatusFeedView.as_view(), name="status-feed"),
    # Public, no sign-in: the keys that sign receipts and checkpoints, and a page
    # that checks a receipt against them.
    path(
        ".well-known/amanah-signing-keys.json",
        SigningKeysView.as_view(),
        name="signing-keys",
    ),
    path("receipts/verify/", ReceiptVerifyView.as_view(), name="receipt-verify"),
    path("favicon.ico", favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SchemaApi.as_view(), name="schema"),
    path("api/schema.json", SchemaJsonApi.as_view(), name="schema-json"),
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema"),
        name="api-docs",
    ),
    # Last: any other URL under /api/ is a 404 in the API's error envelope.
    re_path(r"^api/", api_errors.api_not_found),
]

# Under /api/, Django's own error answers in the API's envelope; pages elsewhere.
handler400 = api_errors.bad_request
handler403 = api_errors.permission_denied
handler404 = api_errors.page_not_found
handler500 = api_errors.server_error
