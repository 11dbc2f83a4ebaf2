"""Every model's name in the admin is English: no "Disposal log entrys"."""

import re

from django.apps import apps

# Django's default plural adds an "s": wrong after a consonant and "y", or after
# "s", "x", "ch" and "sh".
NEEDS_ANOTHER_PLURAL = re.compile(r"([^aeiou]y|s|x|ch|sh)$")


def misspelt(meta) -> bool:
    singular, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
    return plural == singular + "s" and bool(NEEDS_ANOTHER_PLURAL.search(singular))


def test_no_model_has_a_misspelt_plural():
    wrong = {
        model._meta.label: str(model._meta.verbose_name_plural)
        for model in apps.get_models()
        if model.__module__.startswith("apps.") and misspelt(model._meta)
    }
    assert wrong == {}


def test_the_disposal_log_reads_as_entries():
    model = apps.get_model("retention", "DisposalLogEntry")
    assert model._meta.verbose_name_plural == "disposal log entries"
