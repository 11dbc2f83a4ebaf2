"""API tokens are for staff only: delete those customers were given before. Going
back deletes nothing and restores nothing (a token is signed in for again).

DRF's token app (`authtoken`) has since left the project (0006: tokens per client): on
a database that never had it there is nothing to delete, and this migration no longer
depends on it."""

from django.db import migrations

# apps.accounts.models.STAFF_ROLES as it was when this migration was written.
STAFF_ROLES = ("support_agent", "delivery_agent", "compliance_officer", "privacy_admin")


def delete_customer_tokens(apps, schema_editor):
    try:
        Token = apps.get_model("authtoken", "Token")
    except LookupError:
        return
    Token.objects.exclude(user__role__in=STAFF_ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_mask_signin_attempt_forms")]

    operations = [
        migrations.RunPython(delete_customer_tokens, migrations.RunPython.noop)
    ]
