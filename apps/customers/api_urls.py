from django.urls import path

from apps.consent.api import CustomerConsentsApi
from apps.customers import api

urlpatterns = [
    path("", api.CustomerListCreateApi.as_view(), name="customer-list"),
    path("search/", api.CustomerSearchApi.as_view(), name="customer-search"),
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
        "<uuid:customer_id>/erase/",
        api.CustomerEraseApi.as_view(),
        name="customer-erase",
    ),
    path(
        "<uuid:customer_id>/access-log/",
        api.CustomerAccessLogApi.as_view(),
        name="customer-access-log",
    ),
    path(
        "<uuid:customer_id>/consents/",
        CustomerConsentsApi.as_view(),
        name="customer-consents",
    ),
]
