"""django.contrib.admin with the project's site (apps.accounts.admin_site). A module of
its own: INSTALLED_APPS imports it before any model can be."""

from django.contrib.admin.apps import AdminConfig


class AmanahAdminConfig(AdminConfig):
    default_site = "apps.accounts.admin_site.AmanahAdminSite"
