"""Django's own error answers under /api/ in the API's envelope (apps.core.exceptions).

An unknown URL, an id that is not a UUID (no route matches), a body too large, a server
error: Django answers these before or after any API view runs. Under /api/ a client gets
JSON it can parse; elsewhere people get Django's pages as before.
"""

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import Resolver404, resolve
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt

from apps.core.exceptions import error_body

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def api_error(status: int, code: str, detail: str) -> JsonResponse:
    return JsonResponse(
        error_body(status=status, code=code, detail=detail),
        status=status,
        json_dumps_params={"separators": (",", ":")},  # as DRF renders
    )


@csrf_exempt  # a POST to a wrong URL is told so, not refused for its CSRF token
def api_not_found(
    request: HttpRequest, *args: object, **kwargs: object
) -> HttpResponse:
    """The last route under /api/: whatever no other route matched. Answers in JSON
    whatever DEBUG says (Django's own 404 page under DEBUG is HTML). A path that
    lacks only its final slash says so (the API does not redirect: a redirected POST
    would lose its body)."""
    detail = "No such URL in the API."
    if not request.path.endswith("/"):
        try:
            match = resolve(request.path + "/")
        except Resolver404:
            match = None
        if match is not None and match.func is not api_not_found:
            detail = f"No such URL in the API; did you mean {request.path}/ ?"
    return api_error(404, "not_found", detail)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(400, "bad_request", "The request could not be read.")
    return defaults.bad_request(request, exception)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_error(403, "forbidden", "You may not do this.")
    return defaults.permission_denied(request, exception)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    if is_api(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if is_api(request):
        return api_error(
            500,
            "server_error",
            "Something went wrong on our side; try again later.",
        )
    return defaults.server_error(request)
