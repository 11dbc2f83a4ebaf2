from django.urls import path

from apps.access import api

# Under /api/v1/customers/ (config/urls.py), beside the routes of the apps above that
# act on a customer (consents, erasure).
customer_urls = [
    path("", api.CustomerListCreateApi.as_view(), name="customer-list"),
    path("search/", api.CustomerSearchApi.as_view(), name="customer-search"),
    path("changes/", api.CustomerChangesApi.as_view(), name="customer-changes"),
    path(
        "<uuid:customer_id>/", api.CustomerDetailApi.as_view(), name="customer-detail"
    ),
    path(
        "<uuid:customer_id>/reveal/",
        api.CustomerRevealApi.as_view(),
        name="customer-reveal",
    ),
    path(
        "<uuid:customer_id>/close/",
        api.CustomerCloseApi.as_view(),
        name="customer-close",
    ),
    path(
        "<uuid:customer_id>/access-log/",
        api.CustomerAccessLogApi.as_view(),
        name="customer-access-log",
    ),
]

interaction_urls = [
    path("", api.InteractionListCreateApi.as_view(), name="interaction-list"),
    path(
        "<uuid:interaction_id>/",
        api.InteractionDetailApi.as_view(),
        name="interaction-detail",
    ),
    path(
        "<uuid:interaction_id>/close/",
        api.InteractionCloseApi.as_view(),
        name="interaction-close",
    ),
]

contact_urls = [
    path("relay/", api.ContactRelayApi.as_view(), name="contact-relay"),
]
