from django.urls import path

from apps.inventory.api import InventoryApi

urlpatterns = [path("", InventoryApi.as_view(), name="inventory")]
