from django.urls import path

from apps.consent import api

urlpatterns = [
    path("audience/", api.AudienceApi.as_view(), name="consent-audience"),
]

# Under /api/v1/customers/, beside apps.access's customer routes (config/urls.py).
customer_urls = [
    path(
        "<uuid:customer_id>/consents/",
        api.CustomerConsentsApi.as_view(),
        name="customer-consents",
    ),
]
