"""On PostgreSQL the audit trail refuses TRUNCATE too (a statement-level trigger: the
row-level one never sees it), also when a `TRUNCATE ... CASCADE` of a table it refers to
reaches it.

No setting opens it: any role may set a custom setting, so none is a key. Only a
superuser or the table's owner gets past, by switching triggers off
(`session_replication_role = replica`, as the test suite's flush between transactional
tests does in tests/conftest.py, or `ALTER TABLE ... DISABLE TRIGGER`).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION audit_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_no_truncate
    BEFORE TRUNCATE ON audit_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION audit_event_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_event_refuse_truncate();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0002_append_only_trigger")]

    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
