from django.urls import path

from apps.retention import views

app_name = "retention"

urlpatterns = [
    path("retention/", views.RetentionReportView.as_view(), name="report"),
    path("retention/policies/", views.PolicyListView.as_view(), name="policies"),
    path("retention/policies/new/", views.PolicyEditView.as_view(), name="policy-new"),
    path(
        "retention/policies/<slug:code>/",
        views.PolicyEditView.as_view(),
        name="policy-edit",
    ),
    path("retention/holds/", views.HoldListView.as_view(), name="holds"),
    path(
        "retention/holds/<int:pk>/release/",
        views.HoldReleaseView.as_view(),
        name="hold-release",
    ),
]
