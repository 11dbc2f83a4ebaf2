from django.urls import path

from apps.portal import views

app_name = "portal"

urlpatterns = [
    path("", views.ConsentsView.as_view(), name="consents"),
    path("login/", views.CustomerLoginView.as_view(), name="login"),
    path("logout/", views.CustomerLogoutView.as_view(), name="logout"),
    path("language/", views.LanguageView.as_view(), name="language"),
    path("consents/receipts.json", views.ReceiptsView.as_view(), name="receipts"),
    path(
        "consents/<slug:code>/",
        views.ConsentToggleView.as_view(),
        name="consent-toggle",
    ),
    path("notice/", views.NoticeReviewView.as_view(), name="notice"),
    path("notices/", views.MyNoticesView.as_view(), name="notices"),
    path("data/", views.MyDataView.as_view(), name="data"),
    # Where sign-in comes back to from a download link: the token stays in the
    # session, never in `next=` (apps.accounts.permissions.sign_in_next).
    path(
        "data/download/",
        views.ExportDownloadView.as_view(),
        name="request-download-pending",
    ),
    path(
        "data/download/<str:token>/",
        views.ExportDownloadView.as_view(),
        name="request-download",
    ),
    path(
        "confirm/<str:token>/", views.OptInConfirmView.as_view(), name="opt-in-confirm"
    ),
    path("password-reset/", views.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password-reset/sent/",
        views.PasswordResetDoneView.as_view(),
        name="password-reset-done",
    ),
    path(
        "reset/<uidb64>/<token>/",
        views.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path(
        "reset/done/",
        views.PasswordResetCompleteView.as_view(),
        name="password-reset-complete",
    ),
]
