"""`DataRequest.updated_at`: when the request last changed, the clock of the requests'
sync feed (`requests.selectors.requests_changed_since`), read in (updated_at, id)
order.

Existing rows get the latest of the times they hold (received, their newest history
event: a transition or an extension, completed, export ready or downloaded). One UPDATE
of the whole table, not batches: it runs once, in the migration's transaction.

As for customers (customers 0003): the app stamps every write itself; on PostgreSQL a
trigger also stamps any other UPDATE that changes the row and leaves `updated_at` as it
was (raw SQL; the customer or data key set to NULL when they are deleted), and the
column's default stamps a row inserted by SQL without it. Reversing drops the trigger,
the index and the column.
"""

import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce, Greatest

# statement_timestamp(): one time for every row of a statement, the same clock as the
# column's default (`Now()`), and never before the transaction's start; why not now()
# or clock_timestamp() is said in customers 0003.
CREATE = """
CREATE OR REPLACE FUNCTION dsr_datarequest_touch() RETURNS trigger AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := statement_timestamp();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER dsr_datarequest_touch
    BEFORE UPDATE ON dsr_datarequest
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION dsr_datarequest_touch();
"""

DROP = """
DROP TRIGGER IF EXISTS dsr_datarequest_touch ON dsr_datarequest;
DROP FUNCTION IF EXISTS dsr_datarequest_touch();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


def backfill(apps, schema_editor):
    """Each row's latest known time: GREATEST skips NULLs on PostgreSQL, SQLite's MAX
    does not, hence the COALESCEs."""
    DataRequest = apps.get_model("dsr", "DataRequest")
    RequestEvent = apps.get_model("dsr", "RequestEvent")
    newest_event = (
        RequestEvent.objects.filter(request=OuterRef("pk")).order_by("-at").values("at")
    )
    DataRequest.objects.update(
        updated_at=Greatest(
            "received_at",
            Coalesce(Subquery(newest_event[:1]), "received_at"),
            Coalesce("completed_at", "received_at"),
            Coalesce("export_ready_at", "received_at"),
            Coalesce("export_downloaded_at", "received_at"),
        )
    )


class Migration(migrations.Migration):
    dependencies = [
        ("crypto", "0002_datakey_fillfactor"),
        ("customers", "0003_customer_updated_at"),
        ("dsr", "0003_seal_request_details"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="datarequest",
            name="updated_at",
            field=models.DateTimeField(
                auto_now=True,
                db_default=django.db.models.functions.datetime.Now(),
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="datarequest",
            index=models.Index(fields=["updated_at", "id"], name="dsr_updated"),
        ),
        migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP)),
    ]
