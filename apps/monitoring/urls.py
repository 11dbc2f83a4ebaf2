from django.urls import path

from apps.monitoring import views

app_name = "monitoring"

urlpatterns = [
    path("", views.AlertListView.as_view(), name="list"),
    path(
        "<int:alert_id>/<slug:action>/",
        views.AlertActionView.as_view(),
        name="action",
    ),
]
