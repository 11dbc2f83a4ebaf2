"""Site-wide pages that belong to no domain."""

from django.http import HttpRequest, HttpResponsePermanentRedirect
from django.templatetags.static import static


def favicon(request: HttpRequest) -> HttpResponsePermanentRedirect:
    """/favicon.ico, which browsers ask for whatever the page links: the SVG icon
    (static/img/favicon.svg), rather than a 404 on every page."""
    return HttpResponsePermanentRedirect(static("img/favicon.svg"))
