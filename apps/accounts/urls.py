from django.urls import path

from apps.accounts import views

app_name = "accounts"

urlpatterns = [
    path("login/", views.StaffLoginView.as_view(), name="login"),
    path("logout/", views.StaffLogoutView.as_view(), name="logout"),
    path("2fa/setup/", views.OtpSetupView.as_view(), name="otp-setup"),
    path("2fa/verify/", views.OtpVerifyView.as_view(), name="otp-verify"),
    path("security/", views.SecurityView.as_view(), name="security"),
]
