from django.apps import AppConfig


class RequestsConfig(AppConfig):
    name = "apps.requests"
    label = "dsr"
    verbose_name = "Data subject requests"
