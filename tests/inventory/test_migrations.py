import importlib

import pytest
from django.apps import apps

from apps.inventory.models import System

pytestmark = pytest.mark.django_db

backup = importlib.import_module("apps.inventory.migrations.0003_honest_backup_text")


def security() -> str:
    return System.objects.get(name=backup.SYSTEM).security


def test_a_new_install_says_backups_outlive_an_erasure():
    assert security() == backup.NEW


def test_the_correction_runs_both_ways_and_leaves_an_edited_text_alone():
    System.objects.filter(name=backup.SYSTEM).update(security=backup.OLD)
    backup.correct(apps, None)
    assert security() == backup.NEW
    backup.restore(apps, None)
    assert security() == backup.OLD
    System.objects.filter(name=backup.SYSTEM).update(security="Our own words.")
    backup.correct(apps, None)
    assert security() == "Our own words."
