from django.urls import path

from apps.incidents import views

app_name = "incidents"

urlpatterns = [
    path("", views.IncidentListView.as_view(), name="list"),
    path("<uuid:incident_id>/", views.IncidentDetailView.as_view(), name="detail"),
    path(
        "<uuid:incident_id>/report/<slug:rule_code>/",
        views.IncidentReportView.as_view(),
        name="report",
    ),
]
