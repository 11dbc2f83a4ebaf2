from django.urls import path

from apps.webhooks import views

app_name = "webhooks"

urlpatterns = [
    path("", views.WebhookListView.as_view(), name="list"),
    *(
        path(
            f"<uuid:endpoint_id>/{action}/",
            views.WebhookActionView.as_view(),
            {"action": action},
            name=action,
        )
        for action in ("replay", "rotate", "delete")
    ),
]
