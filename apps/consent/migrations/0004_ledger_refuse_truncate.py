"""On PostgreSQL the consent ledger refuses TRUNCATE too (a statement-level trigger:
the row-level one never sees it), also when a `TRUNCATE ... CASCADE` of a table it
refers to (customers, users) reaches it, and also inside a retention disposal: disposal
deletes rows one batch at a time, it never truncates.

No setting opens it (`amanah.disposal` opens row deletes only): any role may set a
custom setting, so none is a key. Only a superuser or the table's owner gets past, by
switching triggers off (`session_replication_role = replica`, as the test suite's flush
between transactional tests does in tests/conftest.py, or `ALTER TABLE ... DISABLE
TRIGGER`).
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION consent_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only: TRUNCATE refused', TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consent_event_no_truncate
    BEFORE TRUNCATE ON consent_consentevent
    FOR EACH STATEMENT EXECUTE FUNCTION consent_event_refuse_truncate();
"""

DROP = """
DROP TRIGGER IF EXISTS consent_event_no_truncate ON consent_consentevent;
DROP FUNCTION IF EXISTS consent_event_refuse_truncate();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("consent", "0003_seed_purposes")]

    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
