"""apps.core.links: every link that leaves the site is on AMANAH_PUBLIC_URL."""

import pytest
from django.urls import set_script_prefix

from apps.core.links import public_url


@pytest.fixture(autouse=True)
def _public(settings):
    settings.AMANAH_PUBLIC_URL = "https://privacy.example.com/"


def test_a_view_name_becomes_an_absolute_url_without_a_double_slash():
    assert public_url("portal:data") == "https://privacy.example.com/me/data/"
    assert (
        public_url("unsubscribe", args=["abc"]) == "https://privacy.example.com/u/abc/"
    )


def test_a_site_path_is_joined_as_it_is():
    assert public_url("/me/") == "https://privacy.example.com/me/"


def test_the_url_is_read_at_call_time(settings):
    settings.AMANAH_PUBLIC_URL = "https://other.example.com"
    assert public_url("portal:consents") == "https://other.example.com/me/"


def test_a_mount_prefix_is_named_by_the_public_url_once(settings):
    settings.AMANAH_PUBLIC_URL = "https://example.com/privacy"
    set_script_prefix("/privacy/")  # as inside a request mounted under /privacy/
    try:
        assert public_url("portal:data") == "https://example.com/privacy/me/data/"
    finally:
        set_script_prefix("/")
