from django.urls import path

from apps.imports import views

app_name = "imports"

urlpatterns = [
    path("", views.ImportListView.as_view(), name="list"),
    path("<uuid:job_id>/", views.ImportJobView.as_view(), name="job"),
    path("<uuid:job_id>/errors.csv", views.ImportErrorsView.as_view(), name="errors"),
]
