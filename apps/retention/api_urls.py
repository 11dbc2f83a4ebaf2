from django.urls import path

from apps.retention import api

# Under /api/v1/customers/, beside apps.access's customer routes (config/urls.py).
customer_urls = [
    path(
        "<uuid:customer_id>/erase/",
        api.CustomerEraseApi.as_view(),
        name="customer-erase",
    ),
]
