from django.apps import AppConfig


class InventoryConfig(AppConfig):
    name = "apps.inventory"
    label = "inventory"
    verbose_name = "Where data lives and who receives it"

    def ready(self) -> None:
        from apps.inventory.selectors import recipient_endpoints_of_customers
        from apps.webhooks.recipients import recipient_endpoints_register

        # Webhooks sits below inventory: it learns who received a customer's data
        # (GDPR art. 19) through this hook (apps/webhooks/recipients.py).
        recipient_endpoints_register(recipient_endpoints_of_customers)
