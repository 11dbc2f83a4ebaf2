from django.urls import path

from apps.consent import api

urlpatterns = [
    path("audience/", api.AudienceApi.as_view(), name="consent-audience"),
    path("changes/", api.ConsentChangesApi.as_view(), name="consent-changes"),
    path(
        "audience/<slug:purpose>.csv",
        api.AudienceExportApi.as_view(),
        name="consent-audience-csv",
    ),
]

# Under /api/v1/customers/, beside apps.access's customer routes (config/urls.py).
customer_urls = [
    path(
        "<uuid:customer_id>/consents/",
        api.CustomerConsentsApi.as_view(),
        name="customer-consents",
    ),
]
