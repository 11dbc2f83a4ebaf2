"""The chain head: one row holding the furthest sequence number the trail has reached
and that event's hash. On PostgreSQL a trigger moves it forward on every insert into
the trail and nothing moves it back, so `verify_audit_chain` sees a trail emptied or
cut at its tail even without a checkpoint. Filled from the trail as it stands.

The head refuses an UPDATE that does not move it forward, DELETE and TRUNCATE, whatever
the session has set. Only a superuser or the table's owner, by switching triggers off
(`session_replication_role = replica`, `ALTER TABLE ... DISABLE TRIGGER`), can move it
back with the trail; only a checkpoint kept elsewhere shows that.
"""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION audit_chain_head_advance() RETURNS trigger AS $$
BEGIN
    INSERT INTO audit_auditchainhead (id, seq, hash) VALUES (1, NEW.seq, NEW.hash)
    ON CONFLICT (id) DO UPDATE SET seq = EXCLUDED.seq, hash = EXCLUDED.hash
        WHERE audit_auditchainhead.seq < EXCLUDED.seq;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_event_advance_head
    AFTER INSERT ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_advance();

CREATE OR REPLACE FUNCTION audit_chain_head_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.id = OLD.id AND NEW.seq > OLD.seq THEN
            RETURN NEW;
        END IF;
    END IF;
    RAISE EXCEPTION 'audit_auditchainhead only moves forward: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER audit_chain_head_forward_only
    BEFORE UPDATE OR DELETE ON audit_auditchainhead
    FOR EACH ROW EXECUTE FUNCTION audit_chain_head_refuse_change();

CREATE TRIGGER audit_chain_head_no_truncate
    BEFORE TRUNCATE ON audit_auditchainhead
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_head_refuse_change();

INSERT INTO audit_auditchainhead (id, seq, hash)
    SELECT 1, seq, hash FROM audit_auditevent ORDER BY seq DESC LIMIT 1;
"""

DROP = """
DROP TRIGGER IF EXISTS audit_chain_head_no_truncate ON audit_auditchainhead;
DROP TRIGGER IF EXISTS audit_chain_head_forward_only ON audit_auditchainhead;
DROP FUNCTION IF EXISTS audit_chain_head_refuse_change();
DROP TRIGGER IF EXISTS audit_event_advance_head ON audit_auditevent;
DROP FUNCTION IF EXISTS audit_chain_head_advance();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_refuse_truncate")]

    operations = [
        migrations.CreateModel(
            name="AuditChainHead",
            fields=[
                (
                    "id",
                    models.PositiveSmallIntegerField(
                        default=1, editable=False, primary_key=True, serialize=False
                    ),
                ),
                ("seq", models.PositiveBigIntegerField(editable=False)),
                ("hash", models.CharField(editable=False, max_length=64)),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("id", 1)),
                        name="audit_chain_head_single_row",
                    )
                ],
            },
        ),
        migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP)),
    ]
