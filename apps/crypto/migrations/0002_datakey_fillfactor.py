"""Leave room on each page of crypto_datakey so key rotation rewrites rows in place
(PostgreSQL HOT updates: no index entries to rewrite, no table bloat)."""

from django.db import migrations


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("crypto", "0001_initial")]

    operations = [
        migrations.RunPython(
            _on_postgres("ALTER TABLE crypto_datakey SET (fillfactor = 70)"),
            _on_postgres("ALTER TABLE crypto_datakey RESET (fillfactor)"),
        )
    ]
