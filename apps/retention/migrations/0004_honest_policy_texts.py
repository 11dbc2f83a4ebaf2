"""Correct the seeded policy texts shown on the public data policy: backups outlive an
erasure, the inactivity clock (and its legal basis) counts only changes to the record,
notes are counted from the account's creation, and reveals outlive the access log. A
text an administrator has edited since is left alone."""

from django.db import migrations

TEXTS = [
    (
        "closed-accounts",
        "When you close your account, we keep your details for two years in case of "
        "disputes or refunds, then destroy the key that encrypts them, so they can never "
        "be read again, in backups too.",
        "When your account is closed, we keep your details for two years in case of "
        "disputes or refunds. Then we destroy the key that encrypts them, and from then "
        "on they cannot be read in our database. Backups taken before that still hold "
        "them until those backups expire, at most 35 days later.",
    ),
    (
        "inactive-customers",
        "If you do not use our services for three years, we erase your personal details "
        "and keep only anonymous figures (country, dates).",
        "Three years after your details were last entered or changed (when your account "
        "was opened, when you asked us to correct them, or when our staff updated them), "
        "we destroy the key to your personal details and remove your region. Signing in "
        "or using our services does not restart this clock. What remains is a record "
        "number with your country, account status and dates, and the records linked to "
        "it (your consent history, our record of who looked at your data, your "
        "requests), kept as this page describes.",
    ),
    (
        "customer-notes",
        "Notes our staff write about a request are deleted two years after they were "
        "written.",
        "Notes our staff write on your record are deleted once your account is two "
        "years old; a note written after that is deleted at our next scheduled "
        "clean-up.",
    ),
    (
        "access-log",
        "The record of which staff member looked at your data, and why, is kept for one "
        "year.",
        "The record of when staff looked at your data, in which role and why, is kept "
        "for one year. When a staff member asks to see a detail in full, that request "
        "(who asked, and the reason given) is kept without a fixed end, in our audit "
        "records.",
    ),
]


# The legal basis shown beside the inactive customers' policy said "without any
# activity", which its clock does not count.
BASES = [
    (
        "inactive-customers",
        "Storage limitation (GDPR art. 5(1)(e)): no purpose remains after three years "
        "without any activity.",
        "Storage limitation (GDPR art. 5(1)(e)): no purpose remains for details nobody "
        "has entered or changed in three years.",
    ),
]


def correct(apps, schema_editor):
    policies = apps.get_model("retention", "RetentionPolicy").objects
    for code, old, new in TEXTS:
        policies.filter(code=code, description=old).update(description=new)
    for code, old, new in BASES:
        policies.filter(code=code, legal_basis=old).update(legal_basis=new)


def restore(apps, schema_editor):
    policies = apps.get_model("retention", "RetentionPolicy").objects
    for code, old, new in TEXTS:
        policies.filter(code=code, description=new).update(description=old)
    for code, old, new in BASES:
        policies.filter(code=code, legal_basis=new).update(legal_basis=old)


class Migration(migrations.Migration):
    dependencies = [("retention", "0003_disposal_log_no_duplicate_index")]

    operations = [migrations.RunPython(correct, restore)]
