import importlib

import pytest
from django.apps import apps

from apps.retention.models import RetentionPolicy

pytestmark = pytest.mark.django_db

texts = importlib.import_module("apps.retention.migrations.0004_honest_policy_texts")


def description(code: str) -> str:
    return RetentionPolicy.objects.get(code=code).description


def test_a_new_install_is_seeded_with_the_corrected_texts():
    for code, _old, new in texts.TEXTS:
        assert description(code) == new


def test_the_correction_leaves_an_edited_text_alone_and_reverses():
    for code, old, _new in texts.TEXTS:
        RetentionPolicy.objects.filter(code=code).update(description=old)
    RetentionPolicy.objects.filter(code="access-log").update(description="Our own.")
    texts.correct(apps, None)
    for code, _old, new in texts.TEXTS:
        assert description(code) == ("Our own." if code == "access-log" else new)
    texts.restore(apps, None)
    for code, old, _new in texts.TEXTS:
        assert description(code) == ("Our own." if code == "access-log" else old)


def test_the_inactive_policys_legal_basis_is_corrected_and_reverses():
    [(code, old, new)] = texts.BASES
    assert RetentionPolicy.objects.get(code=code).legal_basis == new
    RetentionPolicy.objects.filter(code=code).update(legal_basis=old)
    texts.correct(apps, None)
    assert RetentionPolicy.objects.get(code=code).legal_basis == new
    texts.restore(apps, None)
    assert RetentionPolicy.objects.get(code=code).legal_basis == old
