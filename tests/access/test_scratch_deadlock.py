import threading
import pytest
from django.db import connection, connections
from rest_framework.test import APIClient
from apps.accounts.models import Role
from tests.accounts.factories import UserFactory
from tests.access.factories import assign
from tests.customers.factories import make_customer

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

def test_forty_reveals(settings):
    settings.AMANAH_REVEALS_PER_HOUR = 100
    agent = UserFactory(username="agent", role=Role.SUPPORT_AGENT)
    customer = make_customer()
    assign(agent, customer)
    from rest_framework.authtoken.models import Token
    token = Token.objects.create(user=agent)
    barrier = threading.Barrier(40)
    results = []
    def go():
        c = APIClient()
        c.credentials(HTTP_AUTHORIZATION="Token " + token.key)
        barrier.wait()
        try:
            r = c.post(f"/api/v1/customers/{customer.pk}/reveal/", {"fields": ["email"], "reason": "Customer called about refund"}, format="json")
            results.append(r.status_code)
        except Exception as e:
            results.append(repr(e)[:200])
        finally:
            connections.close_all()
    ts = [threading.Thread(target=go) for _ in range(40)]
    [t.start() for t in ts]; [t.join() for t in ts]
    from collections import Counter
    print(Counter(results))
    assert 0
