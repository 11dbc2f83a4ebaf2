"""On PostgreSQL the consent ledger refuses UPDATE, and DELETE too, except inside a
retention disposal that sets `SET LOCAL amanah.disposal = 'on'` for its transaction."""

from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION consent_event_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('amanah.disposal', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'consent_consentevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER consent_event_append_only
    BEFORE UPDATE OR DELETE ON consent_consentevent
    FOR EACH ROW EXECUTE FUNCTION consent_event_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS consent_event_append_only ON consent_consentevent;
DROP FUNCTION IF EXISTS consent_event_refuse_change();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP))]
