from django.urls import path

from apps.accounts.api import (
    ApiTokenDetailApi,
    ApiTokenListCreateApi,
    MeApi,
    TokenCreateApi,
)

urlpatterns = [
    path("token/", TokenCreateApi.as_view(), name="api-token"),
    path("tokens/", ApiTokenListCreateApi.as_view(), name="api-tokens"),
    path(
        "tokens/<int:token_id>/", ApiTokenDetailApi.as_view(), name="api-token-detail"
    ),
    path("me/", MeApi.as_view(), name="api-me"),
]
