from django.urls import path

from apps.compliance import api

urlpatterns = [path("", api.RopaApi.as_view(), name="ropa")]
