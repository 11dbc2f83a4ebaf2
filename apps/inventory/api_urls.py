from django.urls import path

from apps.inventory.api import InventoryApi, RecipientSharesApi

urlpatterns = [
    path("", InventoryApi.as_view(), name="inventory"),
    path(
        "recipients/<int:recipient_id>/shares/",
        RecipientSharesApi.as_view(),
        name="inventory-recipient-shares",
    ),
]
