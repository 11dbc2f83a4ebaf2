from django.urls import path

from apps.compliance import views

app_name = "compliance"

urlpatterns = [
    path("", views.ComplianceHomeView.as_view(), name="home"),
    path("ropa/", views.RopaView.as_view(), name="ropa"),
    path("ropa/new/", views.RopaActivityEditView.as_view(), name="ropa-new"),
    path("ropa/<slug:code>/", views.RopaActivityEditView.as_view(), name="ropa-edit"),
    path(
        "ropa/<slug:code>/reviewed/",
        views.RopaActivityReviewedView.as_view(),
        name="ropa-reviewed",
    ),
]
