"""The WSGI application bench/load.py starts under gunicorn: config.wsgi's Amanah, on
its production settings, with two extra routes to compare its pages against.

- `/bench/naive/customers/<id>/` and `/bench/naive/customers/<id>/consents/`: the same
  customer, masked by the same policy and rendered by the same template, or the same
  consent rows as the same JSON, the naive Django way: no need-to-know check (no
  assignment, interaction or reveal lookups), no access log, no DRF.
- `/bench/floor/`: an empty Django view, the cost of the middleware stack alone
  (session, sign-in, second factor, CSP, ...): no page here can be faster.

Every other path is the real URL configuration, untouched. Served as
`bench._load_app:application`.
"""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")
django.setup(set_prefix=False)

# ruff: noqa: E402 - Django is set up first, as config.wsgi does.
from django.core.handlers.wsgi import WSGIHandler
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path

from apps.access.selectors import policy_matrix
from apps.access.services.reads import _shape
from apps.consent.selectors import consent_overview_for_customer
from apps.crypto.keys import data_keys_preload
from apps.customers.models import Customer
from apps.customers.registry import PII_FIELDS, DataCategory
from config.urls import urlpatterns as amanah_urlpatterns


def naive_customer_page(request: HttpRequest, customer_id) -> HttpResponse:
    customer = Customer.objects.get(pk=customer_id)
    data_keys_preload([customer.data_key_id])
    view, _ = _shape(
        actor=request.user,
        customer=customer,
        matrix=policy_matrix(),
        revealed=set(),
        capped=False,
    )
    rows = [
        {
            "label": spec.label,
            "category": DataCategory(spec.category).label,
            "value": view[spec.name],
            "shown": view["shown"].get(spec.name, ""),
        }
        for spec in PII_FIELDS
        if spec.name in view
    ]
    return render(
        request,
        "access/customer.html",
        {"customer": customer, "view": view, "rows": rows, "reveal_minutes_left": None},
    )


def naive_consents(request: HttpRequest, customer_id) -> JsonResponse:
    customer = Customer.objects.get(pk=customer_id)
    rows = [
        {
            "purpose": row.purpose.code,
            "granted": row.granted,
            "pending": row.pending is not None,
            "updated_at": row.state.updated_at if row.state else None,
            "notice_version": row.state.notice_version if row.state else None,
            "source": row.state.source if row.state else None,
        }
        for row in consent_overview_for_customer(customer=customer)
    ]
    return JsonResponse(rows, safe=False)


def floor(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok", content_type="text/plain")


urlpatterns = [
    path("bench/naive/customers/<uuid:customer_id>/", naive_customer_page),
    path("bench/naive/customers/<uuid:customer_id>/consents/", naive_consents),
    path("bench/floor/", floor),
    *amanah_urlpatterns,
]


class BenchHandler(WSGIHandler):
    """Django's WSGI handler, resolving with this module's URLs (Django honours a
    request's own `urlconf`), so settings stay the production ones."""

    def get_response(self, request):
        request.urlconf = __name__
        return super().get_response(request)


application = BenchHandler()
