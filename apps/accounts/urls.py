from django.urls import path

from apps.accounts import oidc_views, views

app_name = "accounts"

urlpatterns = [
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("logout/", views.StaffLogoutView.as_view(), name="logout"),
    path("2fa/setup/", views.OtpSetupView.as_view(), name="otp-setup"),
    path("2fa/verify/", views.OtpVerifyView.as_view(), name="otp-verify"),
    path("security/", views.SecurityView.as_view(), name="security"),
    # Staff sign-in through the company's OpenID provider (404 when it is off).
    path("oidc/start/", oidc_views.OidcStartView.as_view(), name="oidc-start"),
    path("oidc/callback/", oidc_views.OidcCallbackView.as_view(), name="oidc-callback"),
]
