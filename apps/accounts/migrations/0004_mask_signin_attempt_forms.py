"""Failed customer sign-ins were kept by django-axes with the email address typed in
the form (`post_data`): mask it, as AXES_SENSITIVE_PARAMETERS now does for new ones."""

import re

from django.db import migrations

MASK = "********************"
_SENSITIVE = re.compile(r"^(email|otp_token|csrfmiddlewaretoken)=.*$", re.MULTILINE)


def mask_post_data(apps, schema_editor):
    AccessAttempt = apps.get_model("axes", "AccessAttempt")
    for attempt in AccessAttempt.objects.exclude(post_data="").iterator():
        masked = _SENSITIVE.sub(lambda m: f"{m.group(1)}={MASK}", attempt.post_data)
        if masked != attempt.post_data:
            AccessAttempt.objects.filter(pk=attempt.pk).update(post_data=masked)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_user_session_epoch"),
        ("axes", "0010_accessattemptexpiration"),
    ]

    operations = [migrations.RunPython(mask_post_data, migrations.RunPython.noop)]
