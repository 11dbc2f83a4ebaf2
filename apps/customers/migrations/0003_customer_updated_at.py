"""`Customer.updated_at`: when the row last changed, the clock of the customers' sync
feed (`customers.selectors.customers_changed_since`), read in (updated_at, id) order.

Existing rows take the migration's time, from the column's default: PostgreSQL adds a
column whose default is the same for every row without rewriting the table (a million
customers: milliseconds, not the minutes and twice the disk an UPDATE of every row
costs while it locks them). A sync client starting out reads every row anyway.

The app stamps every write itself (`auto_now`, `Customer.save`, the queryset's
`update`). On PostgreSQL a trigger also stamps any other UPDATE that changes the row
and leaves `updated_at` as it was (raw SQL, a foreign key set to NULL by a delete),
and the column's default (`Now()`) stamps a row inserted by SQL without it. Reversing
drops the trigger, the index and the column.
"""

import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

# statement_timestamp(), not now() nor clock_timestamp(): every row of one statement
# gets one time, as the app's own set-based writes do (one timezone.now() per
# `update`), and Django's `Now()` (the column's default) is the same function on
# PostgreSQL, so rows inserted and updated by SQL share one clock. It is never earlier
# than the transaction's start (now()), so the stamp is nearer to the commit that
# makes the change visible: the gap the sync feed's settle window covers
# (apps/core/sync.py) only narrows. clock_timestamp() would give each row of one
# UPDATE its own time.
CREATE = """
CREATE OR REPLACE FUNCTION customers_customer_touch() RETURNS trigger AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at := statement_timestamp();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER customers_customer_touch
    BEFORE UPDATE ON customers_customer
    FOR EACH ROW WHEN (OLD.* IS DISTINCT FROM NEW.*)
    EXECUTE FUNCTION customers_customer_touch();
"""

DROP = """
DROP TRIGGER IF EXISTS customers_customer_touch ON customers_customer;
DROP FUNCTION IF EXISTS customers_customer_touch();
"""


def _on_postgres(sql: str):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [
        ("crypto", "0002_datakey_fillfactor"),
        ("customers", "0002_erased_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="customer",
            name="updated_at",
            field=models.DateTimeField(
                auto_now=True,
                db_default=django.db.models.functions.datetime.Now(),
            ),
        ),
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                fields=["updated_at", "id"], name="customers_updated_idx"
            ),
        ),
        migrations.RunPython(_on_postgres(CREATE), _on_postgres(DROP)),
    ]
