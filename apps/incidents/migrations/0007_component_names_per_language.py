"""Status page components' names per language: the seeded components (0002) in
Indonesian, German and Persian; a name staff changed keeps no translation."""

from django.db import migrations, models

NAMES = {
    "Website and app": {
        "id": "Situs web dan aplikasi",
        "de": "Website und App",
        "fa": "وب‌سایت و اپلیکیشن",
    },
    "Customer privacy pages": {
        "id": "Halaman privasi pelanggan",
        "de": "Datenschutzseiten für Kunden",
        "fa": "صفحه‌های حریم خصوصی مشتریان",
    },
    "Payments": {"id": "Pembayaran", "de": "Zahlungen", "fa": "پرداخت‌ها"},
    "Deliveries": {"id": "Pengiriman", "de": "Lieferungen", "fa": "ارسال سفارش‌ها"},
}


def translate(apps, schema_editor):
    StatusComponent = apps.get_model("incidents", "StatusComponent")
    for component in StatusComponent.objects.filter(name__in=NAMES, translations={}):
        component.translations = {
            code: {"name": name} for code, name in NAMES[component.name].items()
        }
        component.save(update_fields=["translations"])


class Migration(migrations.Migration):
    dependencies = [("incidents", "0006_verbose_names")]

    operations = [
        migrations.AddField(
            model_name="statuscomponent",
            name="translations",
            field=models.JSONField(
                blank=True,
                default=dict,
                help_text='The name in other languages: {"id": {"name": "..."}, ...}.',
            ),
        ),
        # Backwards: the field is removed with what it holds.
        migrations.RunPython(translate, migrations.RunPython.noop),
    ]
