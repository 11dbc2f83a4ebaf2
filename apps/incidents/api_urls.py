from django.urls import path

from apps.incidents import api

urlpatterns = [
    path("", api.IncidentListCreateApi.as_view(), name="incident-list"),
    path(
        "<uuid:incident_id>/", api.IncidentDetailApi.as_view(), name="incident-detail"
    ),
    path(
        "<uuid:incident_id>/status/",
        api.IncidentTransitionApi.as_view(),
        name="incident-status",
    ),
    path(
        "<uuid:incident_id>/deadlines/",
        api.IncidentDeadlinesApi.as_view(),
        name="incident-deadlines",
    ),
    path(
        "<uuid:incident_id>/notified/",
        api.IncidentNotifiedApi.as_view(),
        name="incident-notified",
    ),
    path(
        "<uuid:incident_id>/affected/",
        api.IncidentAffectedApi.as_view(),
        name="incident-affected",
    ),
    path(
        "<uuid:incident_id>/notifications/",
        api.IncidentNotificationsApi.as_view(),
        name="incident-notifications",
    ),
]
