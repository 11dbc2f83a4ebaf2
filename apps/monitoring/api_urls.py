from django.urls import path

from apps.monitoring import api

urlpatterns = [
    path("", api.AlertListApi.as_view(), name="alert-list"),
]
