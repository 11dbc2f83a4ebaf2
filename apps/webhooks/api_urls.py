from django.urls import path

from apps.webhooks import api

urlpatterns = [
    path("", api.WebhookListCreateApi.as_view(), name="webhook-list"),
    path("<uuid:endpoint_id>/", api.WebhookDetailApi.as_view(), name="webhook-detail"),
    path(
        "<uuid:endpoint_id>/deliveries/",
        api.WebhookDeliveriesApi.as_view(),
        name="webhook-deliveries",
    ),
    path(
        "<uuid:endpoint_id>/replay/",
        api.WebhookReplayApi.as_view(),
        name="webhook-replay",
    ),
]
