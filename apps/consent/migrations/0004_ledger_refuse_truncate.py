"""On PostgreSQL the consent ledger refuses TRUNCATE too (a statement-level trigger:
the row-level one never sees it), also when a `TRUNCATE ... CASCADE` of a table it
refers to (customers, users) reaches it, and also inside a retention disposal: disposal
deletes rows one batch at a time, it never truncates.

Only a transaction that sets `SET LOCAL amanah.truncate_ok = 'on'` passes: the test
suite's flush between transactional tests (tests/conftest.py), never application code.
"""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION consent_event_refuse_truncate() RETURNS trigger AS $$
BEGIN
    IF current_setting('amanah.truncate_ok', true) = 'on' THEN
        RETURN NULL;
    END IF;
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
