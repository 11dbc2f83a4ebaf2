from django.urls import path

from apps.accounts.api import MeApi, TokenCreateApi

urlpatterns = [
    path("token/", TokenCreateApi.as_view(), name="api-token"),
    path("me/", MeApi.as_view(), name="api-me"),
]
