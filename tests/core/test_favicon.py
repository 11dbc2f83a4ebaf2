"""The favicon: linked from every page, and /favicon.ico (which browsers ask for
anyway) is no 404."""

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static


def test_favicon_ico_redirects_to_the_svg_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("img/favicon.svg")
    assert finders.find("img/favicon.svg")


@pytest.mark.django_db
def test_every_page_links_the_icon(client):
    html = client.get("/status/").content.decode()
    assert f'<link rel="icon" href="{static("img/favicon.svg")}"' in html
