"""A notice's words stored once per rendering (`NoticeWording`), not once per notice:
each notice keeps its wording and its own remedy code.

Notices queued before keep their words as they were: one wording per distinct text of
an incident (their remedy codes are in their texts already, so `remedy_code` stays
empty for them). Reversed, every notice gets its own copy of its words back."""

import hashlib
import json

import django.db.models.deletion
from django.db import migrations, models

CODE_MARK = "\ue000"  # apps.incidents.notices.CODE_MARK, as of this migration


def _digest(language, subject, body, sections):
    words = [language, subject, body, sections]
    return hashlib.sha256(json.dumps(words, sort_keys=True).encode()).hexdigest()


# On PostgreSQL both directions are set-based: one INSERT of the distinct texts and
# one UPDATE of the notices (an md5 stands for the digest of these old texts: unique
# per incident all the same, and never the length of a new one's SHA-256).
_WORDS = (
    "md5(n.language || chr(31) || n.subject || chr(31) || n.body || chr(31) "
    "|| n.sections::text)"
)
FORWARD_SQL = [
    "INSERT INTO incidents_noticewording "
    "(incident_id, digest, language, subject, body, sections) "
    "SELECT DISTINCT ON (n.incident_id, d) n.incident_id, d, n.language, n.subject, "
    f"n.body, n.sections FROM (SELECT n.*, {_WORDS} AS d "
    "FROM incidents_incidentnotice n) n",
    "UPDATE incidents_incidentnotice n SET wording_id = w.id "
    "FROM incidents_noticewording w "
    f"WHERE w.incident_id = n.incident_id AND w.digest = {_WORDS}",
]
BACKWARD_SQL = [
    "UPDATE incidents_incidentnotice n SET subject = w.subject, "
    "body = replace(w.body, chr(57344), n.remedy_code), "
    "sections = replace(w.sections::text, chr(57344), n.remedy_code)::jsonb "
    "FROM incidents_noticewording w WHERE w.id = n.wording_id",
]


def wordings_make(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in FORWARD_SQL:
            schema_editor.execute(statement)
        return
    notice_model = apps.get_model("incidents", "IncidentNotice")
    wording_model = apps.get_model("incidents", "NoticeWording")
    found: dict[tuple, int] = {}
    notices = notice_model.objects.order_by("pk").only(
        "incident_id", "language", "subject", "body", "sections"
    )
    for notice in notices.iterator(chunk_size=2000):
        digest = _digest(notice.language, notice.subject, notice.body, notice.sections)
        key = (notice.incident_id, digest)
        if key not in found:
            found[key] = wording_model.objects.create(
                incident_id=notice.incident_id,
                digest=digest,
                language=notice.language,
                subject=notice.subject,
                body=notice.body,
                sections=notice.sections,
            ).pk
        notice_model.objects.filter(pk=notice.pk).update(wording_id=found[key])


def wordings_copy_back(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for statement in BACKWARD_SQL:
            schema_editor.execute(statement)
        return
    notice_model = apps.get_model("incidents", "IncidentNotice")
    notices = notice_model.objects.order_by("pk").select_related("wording")
    for notice in notices.iterator(chunk_size=2000):
        code, wording = notice.remedy_code, notice.wording
        notice_model.objects.filter(pk=notice.pk).update(
            subject=wording.subject,
            body=wording.body.replace(CODE_MARK, code),
            sections=[
                {**s, "text": s["text"].replace(CODE_MARK, code)}
                for s in wording.sections
            ],
        )


class Migration(migrations.Migration):
    dependencies = [
        ("incidents", "0007_component_names_per_language"),
    ]

    operations = [
        migrations.CreateModel(
            name="NoticeWording",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                ("digest", models.CharField(max_length=64)),
                ("language", models.CharField(max_length=5)),
                ("subject", models.CharField(max_length=200)),
                ("body", models.TextField()),
                ("sections", models.JSONField(blank=True, default=list)),
                (
                    "incident",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="wordings",
                        to="incidents.incident",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("incident", "digest"), name="incidents_wording_once"
                    )
                ],
            },
        ),
        migrations.AddField(
            model_name="incidentnotice",
            name="wording",
            field=models.ForeignKey(
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notices",
                to="incidents.noticewording",
            ),
        ),
        migrations.AddField(
            model_name="incidentnotice",
            name="remedy_code",
            field=models.CharField(
                blank=True, db_default="", default="", max_length=32
            ),
        ),
        migrations.RunPython(wordings_make, wordings_copy_back),
        # Blank and defaulted before they go: reversed, the columns come back filled
        # with '' on existing rows, then with their words (`wordings_copy_back`).
        migrations.AlterField(
            model_name="incidentnotice",
            name="subject",
            field=models.CharField(blank=True, default="", max_length=200),
        ),
        migrations.AlterField(
            model_name="incidentnotice",
            name="body",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.RemoveField(model_name="incidentnotice", name="subject"),
        migrations.RemoveField(model_name="incidentnotice", name="body"),
        migrations.RemoveField(model_name="incidentnotice", name="sections"),
        migrations.AlterField(
            model_name="incidentnotice",
            name="wording",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="notices",
                to="incidents.noticewording",
            ),
        ),
    ]
