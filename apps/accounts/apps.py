from django.apps import AppConfig

from apps.core.navigation import NavItem


class AccountsConfig(AppConfig):
    name = "apps.accounts"
    label = "accounts"
    verbose_name = "Accounts"
    nav_items = (
        NavItem(
            "Home",
            "home",
            roles=(
                "support_agent",
                "delivery_agent",
                "compliance_officer",
                "privacy_admin",
            ),
            order=10,
        ),
        NavItem(
            "API docs",
            "api-docs",
            roles=(
                "support_agent",
                "delivery_agent",
                "compliance_officer",
                "privacy_admin",
            ),
            order=130,
        ),
    )

    def ready(self) -> None:
        from apps.accounts.oidc import oidc_config

        # A half-set OIDC configuration, or a group mapped to an unknown role, stops
        # every process at start-up naming it (ImproperlyConfigured).
        oidc_config()
