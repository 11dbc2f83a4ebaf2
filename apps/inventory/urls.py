from django.urls import path

from apps.inventory import views

app_name = "inventory"

urlpatterns = [
    path("", views.InventoryView.as_view(), name="list"),
    path(
        "recipients/<int:recipient_id>/endpoint/",
        views.RecipientEndpointView.as_view(),
        name="recipient-endpoint",
    ),
]
