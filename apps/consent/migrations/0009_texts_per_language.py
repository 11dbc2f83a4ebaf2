# ruff: noqa: E501, RUF001 (texts in Indonesian, German and Persian)
"""Purposes, privacy notices and notice changes get their texts per language.

`translations` holds the languages other than English, the source kept in the fields
as before: {"id": {"name": ..., "description": ...}, "de": {...}, "fa": {...}}. A
customer gets one whole language of each purpose and each notice (see
`apps.consent.selectors.purpose_text` and `notice_text`).

The seeded purposes and notices get Indonesian, German and Persian, but only where
they still hold the seeded English, every text of it (a name or description an
administrator has edited would no longer match its translation) and have no translations yet. Going back drops the
fields, and with them every translation.
"""

from django.db import migrations, models

PURPOSES = {
    "marketing_email": (
        "Offers and news by email, sent only once you confirm by a link we email you. "
        "You can stop them at any time on your privacy page.",
        {
            "id": {
                "name": "Email pemasaran",
                "description": "Penawaran dan berita melalui email, yang hanya dikirim "
                "setelah Anda mengonfirmasi melalui tautan yang kami kirim lewat email. "
                "Anda dapat menghentikannya kapan saja di halaman privasi Anda.",
            },
            "de": {
                "name": "Werbe-E-Mails",
                "description": "Angebote und Neuigkeiten per E-Mail, erst nachdem Sie "
                "über einen Link bestätigt haben, den wir Ihnen per E-Mail senden. Sie "
                "können sie jederzeit auf Ihrer Datenschutzseite abbestellen.",
            },
            "fa": {
                "name": "ایمیل‌های تبلیغاتی",
                "description": "پیشنهادها و خبرها از راه ایمیل، فقط پس از آن‌که با "
                "پیوندی که برایتان ایمیل می‌کنیم تأیید کنید. هر زمان بخواهید می‌توانید "
                "آن‌ها را در صفحهٔ حریم خصوصی خود متوقف کنید.",
            },
        },
    ),
    "marketing_sms": (
        "Offers by SMS. We ask before sending any, and you can stop them at any time.",
        {
            "id": {
                "name": "SMS pemasaran",
                "description": "Penawaran melalui SMS. Kami bertanya sebelum "
                "mengirimkannya, dan Anda dapat menghentikannya kapan saja.",
            },
            "de": {
                "name": "Werbe-SMS",
                "description": "Angebote per SMS. Wir fragen, bevor wir eine senden, "
                "und Sie können sie jederzeit abbestellen.",
            },
            "fa": {
                "name": "پیامک‌های تبلیغاتی",
                "description": "پیشنهادها از راه پیامک. پیش از فرستادن هر پیامکی از "
                "شما می‌پرسیم و هر زمان بخواهید می‌توانید آن‌ها را متوقف کنید.",
            },
        },
    ),
    "marketing_push": (
        "Offers and reminders as notifications in our app.",
        {
            "id": {
                "name": "Notifikasi aplikasi",
                "description": "Penawaran dan pengingat sebagai notifikasi di aplikasi "
                "kami.",
            },
            "de": {
                "name": "App-Benachrichtigungen",
                "description": "Angebote und Erinnerungen als Benachrichtigungen in "
                "unserer App.",
            },
            "fa": {
                "name": "اعلان‌های برنامه",
                "description": "پیشنهادها و یادآوری‌ها به‌صورت اعلان در برنامهٔ ما.",
            },
        },
    ),
    "analytics": (
        "How you use our services, measured to improve them. Never sold.",
        {
            "id": {
                "name": "Analitik produk",
                "description": "Cara Anda menggunakan layanan kami, diukur untuk "
                "meningkatkannya. Tidak pernah dijual.",
            },
            "de": {
                "name": "Produktanalyse",
                "description": "Wie Sie unsere Dienste nutzen, gemessen, um sie zu "
                "verbessern. Niemals verkauft.",
            },
            "fa": {
                "name": "تحلیل محصول",
                "description": "این‌که چگونه از خدمات ما استفاده می‌کنید، سنجیده "
                "می‌شود تا آن‌ها را بهتر کنیم. هرگز فروخته نمی‌شود.",
            },
        },
    ),
    "partner_sharing": (
        "Sharing your contact details with selected partners for their own offers (the "
        '"sale or sharing" of personal information under the CCPA). The first time we '
        "see your browser's Global Privacy Control signal while this is on, we turn it "
        "off; turned on again after that, it stays on.",
        {
            "id": {
                "name": "Berbagi dengan mitra",
                "description": "Membagikan detail kontak Anda kepada mitra terpilih "
                'untuk penawaran mereka sendiri ("penjualan atau pembagian" informasi '
                "pribadi menurut CCPA). Saat pertama kali kami melihat sinyal Global "
                "Privacy Control dari peramban Anda ketika ini aktif, kami "
                "menonaktifkannya; jika Anda mengaktifkannya lagi setelah itu, ini "
                "tetap aktif.",
            },
            "de": {
                "name": "Weitergabe an Partner",
                "description": "Weitergabe Ihrer Kontaktdaten an ausgewählte Partner "
                "für deren eigene Angebote (der „Verkauf oder die Weitergabe“ "
                "personenbezogener Daten nach dem CCPA). Sehen wir das "
                "Global-Privacy-Control-Signal Ihres Browsers zum ersten Mal, während "
                "dies eingeschaltet ist, schalten wir es aus; danach wieder "
                "eingeschaltet, bleibt es eingeschaltet.",
            },
            "fa": {
                "name": "اشتراک‌گذاری با شرکا",
                "description": "اشتراک‌گذاری اطلاعات تماس شما با شرکای برگزیده برای "
                "پیشنهادهای خودشان («فروش یا اشتراک‌گذاری» اطلاعات شخصی طبق CCPA). "
                "نخستین باری که سیگنال Global Privacy Control مرورگر شما را ببینیم "
                "در حالی که این گزینه روشن است، آن را خاموش می‌کنیم؛ اگر پس از آن "
                "دوباره روشنش کنید، روشن می‌ماند.",
            },
        },
    ),
}

TITLE = "Privacy notice"
BODY = (
    "We keep your personal data encrypted and show it to staff only as far as their "
    "task needs. Apart from providing the service you signed up for (support, "
    "deliveries, payments) and what the law requires of us (for example telling you "
    "about a breach), we use it only for the purposes on your privacy page, and only "
    "while you agree. We dispose of it on the schedule in our data policy. Some records "
    "are kept without a fixed end, among them our audit trail, the record of staff "
    "asking to see a detail in full, your requests to us and the notices we sent you. "
    "You can change every choice on your privacy page at any time."
)
SUMMARIES = {
    "How we collect, use, keep and dispose of your personal data.": {
        "id": "Cara kami mengumpulkan, menggunakan, menyimpan, dan membuang data "
        "pribadi Anda.",
        "de": "Wie wir Ihre personenbezogenen Daten erheben, verwenden, aufbewahren und "
        "löschen.",
        "fa": "چگونه داده‌های شخصی شما را گردآوری می‌کنیم، به کار می‌بریم، نگه می‌داریم "
        "و از میان می‌بریم.",
    },
    "Clearer wording on what we use your data for besides what you agreed to, and on "
    "what we keep without a fixed end. None of your choices changed.": {
        "id": "Kata-kata yang lebih jelas tentang untuk apa kami menggunakan data Anda "
        "selain yang Anda setujui, dan tentang apa yang kami simpan tanpa batas waktu "
        "tertentu. Tidak ada pilihan Anda yang berubah.",
        "de": "Klarere Worte dazu, wofür wir Ihre Daten außer für das verwenden, dem "
        "Sie zugestimmt haben, und was wir ohne festes Ende aufbewahren. Keine Ihrer "
        "Entscheidungen hat sich geändert.",
        "fa": "بیانی روشن‌تر دربارهٔ این‌که داده‌های شما را جز برای آنچه با آن موافقت "
        "کرده‌اید برای چه به کار می‌بریم، و دربارهٔ آنچه بدون پایان مشخص نگه می‌داریم. "
        "هیچ‌یک از انتخاب‌های شما تغییر نکرد.",
    },
}
TITLES = {
    "id": "Pemberitahuan privasi",
    "de": "Datenschutzhinweis",
    "fa": "اطلاعیهٔ حریم خصوصی",
}
BODIES = {
    "id": "Kami menyimpan data pribadi Anda dalam keadaan terenkripsi dan "
    "menunjukkannya kepada staf hanya sejauh yang dibutuhkan tugas mereka. Selain untuk "
    "menyediakan layanan yang Anda daftarkan (dukungan, pengiriman, pembayaran) dan apa "
    "yang diwajibkan hukum kepada kami (misalnya memberi tahu Anda tentang kebocoran "
    "data), kami menggunakannya hanya untuk tujuan yang ada di halaman privasi Anda, dan "
    "hanya selama Anda setuju. Kami membuangnya sesuai jadwal dalam kebijakan data kami. "
    "Beberapa catatan disimpan tanpa batas waktu tertentu, di antaranya jejak audit "
    "kami, catatan staf yang meminta melihat suatu detail secara lengkap, permintaan "
    "Anda kepada kami, dan pemberitahuan yang kami kirimkan kepada Anda. Anda dapat "
    "mengubah setiap pilihan di halaman privasi Anda kapan saja.",
    "de": "Wir speichern Ihre personenbezogenen Daten verschlüsselt und zeigen sie "
    "Mitarbeitenden nur so weit, wie ihre Aufgabe es erfordert. Außer um den Dienst zu "
    "erbringen, für den Sie sich angemeldet haben (Support, Lieferungen, Zahlungen), "
    "und für das, was das Gesetz von uns verlangt (zum Beispiel Sie über eine "
    "Datenpanne zu informieren), verwenden wir sie nur für die Zwecke auf Ihrer "
    "Datenschutzseite und nur, solange Sie zustimmen. Wir löschen sie nach dem Zeitplan "
    "in unserer Datenrichtlinie. Einige Aufzeichnungen werden ohne festes Ende "
    "aufbewahrt, darunter unser Prüfprotokoll, die Aufzeichnung, wenn Mitarbeitende "
    "eine Angabe vollständig sehen wollten, Ihre Anfragen an uns und die Mitteilungen, "
    "die wir Ihnen gesendet haben. Sie können jede Entscheidung jederzeit auf Ihrer "
    "Datenschutzseite ändern.",
    "fa": "ما داده‌های شخصی شما را رمزگذاری‌شده نگه می‌داریم و آن‌ها را فقط تا جایی که "
    "کار کارکنان لازم دارد به آنان نشان می‌دهیم. جز برای ارائهٔ خدمتی که برای آن "
    "ثبت‌نام کرده‌اید (پشتیبانی، ارسال، پرداخت) و آنچه قانون از ما می‌خواهد (برای "
    "نمونه آگاه کردن شما از نشت داده‌ها)، آن‌ها را فقط برای هدف‌هایی که در صفحهٔ حریم "
    "خصوصی شما آمده و فقط تا زمانی که موافق باشید به کار می‌بریم. آن‌ها را طبق "
    "زمان‌بندی سیاست داده‌های خود از میان می‌بریم. برخی سوابق بدون پایان مشخص نگه "
    "داشته می‌شوند، از جمله سوابق حسابرسی ما، سابقهٔ درخواست کارکنان برای دیدن کامل "
    "یک جزئیات، درخواست‌های شما از ما و اطلاعیه‌هایی که برایتان فرستاده‌ایم. هر زمان "
    "بخواهید می‌توانید هر انتخابی را در صفحهٔ حریم خصوصی خود تغییر دهید.",
}


# The seeded English names (0003_seed_purposes): a purpose is translated only while
# both its name and its description are the seeded ones.
NAMES = {
    "marketing_email": "Marketing emails",
    "marketing_sms": "Marketing text messages",
    "marketing_push": "App notifications",
    "analytics": "Product analytics",
    "partner_sharing": "Sharing with partners",
}


def translate_seeded(apps, schema_editor):
    Purpose = apps.get_model("consent", "Purpose")
    PrivacyNotice = apps.get_model("consent", "PrivacyNotice")
    for code, (description, translations) in PURPOSES.items():
        Purpose.objects.filter(
            code=code, name=NAMES[code], description=description, translations={}
        ).update(translations=translations)
    for summary, summaries in SUMMARIES.items():
        PrivacyNotice.objects.filter(
            title=TITLE, summary=summary, body=BODY, translations={}
        ).update(
            translations={
                code: {
                    "title": TITLES[code],
                    "summary": summaries[code],
                    "body": BODIES[code],
                }
                for code in TITLES
            }
        )


class Migration(migrations.Migration):
    dependencies = [("consent", "0008_import_source")]

    operations = [
        migrations.AddField(
            model_name="noticechange",
            name="translations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="privacynotice",
            name="translations",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="purpose",
            name="translations",
            field=models.JSONField(blank=True, default=dict),
        ),
        # Going back, the fields (and the translations in them) are dropped.
        migrations.RunPython(translate_seeded, migrations.RunPython.noop),
    ]
