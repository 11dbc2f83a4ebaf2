from apps.portal.services import customer_account_enable
from tests.customers.factories import make_customer

PASSWORD = "a-customer-password-77"


def make_account(email: str = "siti@example.com", **overrides):
    customer = make_customer(email=email, **overrides)
    customer_account_enable(actor=None, customer=customer, password=PASSWORD)
    customer.refresh_from_db()
    return customer
