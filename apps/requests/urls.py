from django.urls import path

from apps.requests import views

app_name = "requests"

urlpatterns = [
    path("", views.RequestQueueView.as_view(), name="queue"),
    path("<uuid:request_id>/", views.RequestDetailView.as_view(), name="detail"),
]
