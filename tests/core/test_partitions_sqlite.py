import pytest
from django.core.management import call_command
from django.db import connection

from apps.access.selectors import access_log_months
from apps.core.partitions import partitions_ensure, partitions_list

pytestmark = pytest.mark.django_db


@pytest.mark.skipif(connection.vendor == "postgresql", reason="SQLite's plain tables")
def test_on_sqlite_the_logs_are_plain_tables_and_everything_is_a_no_op(capsys):
    assert partitions_ensure() == []
    assert partitions_list("access_accesslogentry") == []
    assert access_log_months() == []
    call_command("partitions", "list")
    call_command("partitions", "ensure")
    out = capsys.readouterr().out.splitlines()
    assert out == ["No partitions: on SQLite the logs are plain tables."] * 2
