from django.urls import path

from apps.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.AuditEventListView.as_view(), name="event-list"),
    path("audit/verify/", views.AuditChainVerifyView.as_view(), name="verify"),
]
