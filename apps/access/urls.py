from django.urls import path

from apps.access import views

app_name = "staff"

urlpatterns = [
    path("", views.StaffDeskView.as_view(), name="desk"),
    path(
        "customers/<uuid:customer_id>/",
        views.StaffCustomerView.as_view(),
        name="customer",
    ),
    path(
        "customers/<uuid:customer_id>/restrictions/<int:restriction_id>/lift/",
        views.RestrictionLiftView.as_view(),
        name="restriction-lift",
    ),
    path(
        "interactions/open/",
        views.InteractionOpenView.as_view(),
        name="interaction-open",
    ),
    path(
        "interactions/<uuid:interaction_id>/close/",
        views.InteractionCloseView.as_view(),
        name="interaction-close",
    ),
    path("policy/", views.PolicyEditView.as_view(), name="policy"),
    path("oversight/", views.OversightView.as_view(), name="oversight"),
]
