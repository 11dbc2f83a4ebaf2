"""A notice's language is its wording's (`IncidentNotice.language`, a property): the
column that held a copy of it goes. Reversed, the column comes back filled from each
notice's wording, in one UPDATE."""

from django.db import migrations, models

LANGUAGES_RESTORE = (
    "UPDATE incidents_incidentnotice SET language = ("
    "SELECT w.language FROM incidents_noticewording w "
    "WHERE w.id = incidents_incidentnotice.wording_id)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0008_notice_wordings"),
    ]

    # Reversed bottom up: the column comes back empty (the default below), is filled,
    # and loses its default.
    operations = [
        migrations.AlterField(
            model_name="incidentnotice",
            name="language",
            field=models.CharField(max_length=5, default=""),
        ),
        migrations.RunSQL(migrations.RunSQL.noop, reverse_sql=LANGUAGES_RESTORE),
        migrations.RemoveField(
            model_name="incidentnotice",
            name="language",
        ),
    ]
