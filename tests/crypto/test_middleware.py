import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from apps.crypto.errors import IntegrityFailure
from apps.crypto.keys import _scope
from apps.crypto.middleware import KeyScopeMiddleware


def test_each_request_gets_a_key_scope_that_ends_with_it():
    seen = {}

    def view(request):
        seen["scope"] = _scope.get()
        return HttpResponse("ok")

    KeyScopeMiddleware(view)(RequestFactory().get("/"))
    assert seen["scope"] == {}
    assert _scope.get() is None


@pytest.mark.django_db
def test_integrity_failures_render_a_clear_409_page():
    middleware = KeyScopeMiddleware(lambda request: HttpResponse())
    request = RequestFactory().get("/")
    from django.contrib.auth.models import AnonymousUser

    request.user = AnonymousUser()
    response = middleware.process_exception(request, IntegrityFailure("x"))
    assert response.status_code == 409
    assert b"failed its integrity check" in response.content
    assert middleware.process_exception(request, ValueError()) is None
