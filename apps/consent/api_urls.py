from django.urls import path

from apps.consent import api

urlpatterns = [
    path("audience/", api.AudienceApi.as_view(), name="consent-audience"),
]
