from django.urls import path

from apps.requests import api

urlpatterns = [
    path("", api.RequestListApi.as_view(), name="request-list"),
    path("<uuid:request_id>/", api.RequestDetailApi.as_view(), name="request-detail"),
    path(
        "<uuid:request_id>/transition/",
        api.RequestTransitionApi.as_view(),
        name="request-transition",
    ),
]
