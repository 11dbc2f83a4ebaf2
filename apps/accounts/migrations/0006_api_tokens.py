"""API tokens per client (ApiToken), replacing DRF's one token per user.

DRF's token app has left INSTALLED_APPS: its table (keys in clear, accepted by nothing
now) is dropped and its migrations forgotten, as `migrate authtoken zero` would have
done, so that the app could come back cleanly. Going back removes ApiToken and
restores no DRF token (they lasted AMANAH_TOKEN_HOURS; staff sign in again)."""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models
from django.db.migrations.recorder import MigrationRecorder


def drop_drf_tokens(apps, schema_editor):
    connection = schema_editor.connection
    if "authtoken_token" in connection.introspection.table_names():
        schema_editor.execute(
            f"DROP TABLE {schema_editor.quote_name('authtoken_token')}"
        )
    MigrationRecorder(connection).migration_qs.filter(app="authtoken").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_delete_customer_api_tokens"),
    ]

    operations = [
        migrations.CreateModel(
            name="ApiToken",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("sign_in", "Sign-in"),
                            ("named", "Named (an integration's)"),
                        ],
                        max_length=16,
                    ),
                ),
                ("name", models.CharField(blank=True, max_length=100)),
                (
                    "key_hash",
                    models.CharField(editable=False, max_length=64, unique=True),
                ),
                ("key_prefix", models.CharField(editable=False, max_length=8)),
                ("scopes", models.JSONField(blank=True, null=True)),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("expires_at", models.DateTimeField()),
                ("last_used_at", models.DateTimeField(blank=True, null=True)),
                ("revoked_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="api_tokens",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(
                        fields=["user", "-created_at"],
                        name="accounts_apitoken_user_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(
                                ("kind", "sign_in"),
                                ("name", ""),
                                ("scopes__isnull", True),
                            ),
                            models.Q(
                                ("kind", "named"),
                                ("scopes__isnull", False),
                                models.Q(("name", ""), _negated=True),
                            ),
                            _connector="OR",
                        ),
                        name="accounts_apitoken_kind_shape",
                    )
                ],
            },
        ),
        migrations.RunPython(drop_drf_tokens, migrations.RunPython.noop),
    ]
