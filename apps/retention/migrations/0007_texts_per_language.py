# ruff: noqa: E501, RUF001 (texts in Indonesian, German and Persian)
"""Retention policies get their description and legal basis per language, for the
public data policy: `translations` holds the languages other than English (the
source, kept in the fields as before), {"id": {"description": ...,
"legal_basis": ...}, ...}; each policy is shown whole in one language.

The seeded policies get Indonesian, German and Persian, but only where they still
hold the seeded English (a text an administrator has edited would no longer match
its translation) and have no translations yet. Going back drops the field, and with
it every translation.
"""

from importlib import import_module

from django.db import migrations, models

# code: {language: (description, legal basis)}
TEXTS = {
    "closed-accounts": {
        "id": (
            "Ketika akun Anda ditutup, kami menyimpan detail Anda selama dua tahun untuk berjaga-jaga jika ada sengketa atau pengembalian dana. Setelah itu kami menghancurkan kunci yang mengenkripsinya, dan sejak saat itu detail tersebut tidak dapat dibaca di basis data kami. Cadangan yang dibuat sebelumnya masih menyimpannya sampai cadangan itu kedaluwarsa, paling lambat 35 hari kemudian.",
            "Pembatasan penyimpanan (GDPR pasal 5(1)(e), UU PDP pasal 43); dua tahun mencakup sengketa dan penagihan balik setelah akun ditutup.",
        ),
        "de": (
            "Wenn Ihr Konto geschlossen wird, bewahren wir Ihre Angaben zwei Jahre lang für den Fall von Streitigkeiten oder Erstattungen auf. Dann vernichten wir den Schlüssel, mit dem sie verschlüsselt sind, und von da an können sie in unserer Datenbank nicht mehr gelesen werden. Sicherungen, die vorher angelegt wurden, enthalten sie noch, bis diese Sicherungen ablaufen, spätestens 35 Tage später.",
            "Speicherbegrenzung (DSGVO Art. 5 Abs. 1 lit. e, UU PDP Art. 43); zwei Jahre decken Streitfälle und Rückbuchungen nach der Schließung eines Kontos ab.",
        ),
        "fa": (
            "وقتی حساب شما بسته شود، جزئیات شما را دو سال برای مواقع اختلاف یا بازپرداخت نگه می‌داریم. سپس کلیدی را که آن‌ها را رمزگذاری می‌کند نابود می‌کنیم و از آن پس در پایگاه دادهٔ ما خواندنی نیستند. نسخه‌های پشتیبانی که پیش از آن گرفته شده‌اند، تا زمان انقضایشان، حداکثر ۳۵ روز بعد، هنوز آن‌ها را در خود دارند.",
            "محدودیت نگهداری (GDPR ماده ۵(۱)(e)، UU PDP ماده ۴۳)؛ دو سال، اختلاف‌ها و برگشت وجه پس از بسته شدن حساب را پوشش می‌دهد.",
        ),
    },
    "inactive-customers": {
        "id": (
            "Tiga tahun setelah detail Anda terakhir dimasukkan atau diubah (saat akun Anda dibuka, saat Anda meminta kami memperbaikinya, atau saat staf kami memperbaruinya), kami menghancurkan kunci detail pribadi Anda dan menghapus wilayah Anda. Masuk ke akun atau menggunakan layanan kami tidak memulai ulang hitungan waktu ini. Yang tersisa adalah nomor catatan beserta negara, status akun, dan tanggal-tanggal Anda, serta catatan yang terkait dengannya (riwayat persetujuan Anda, catatan kami tentang siapa yang melihat data Anda, permintaan Anda), yang disimpan sebagaimana dijelaskan di halaman ini.",
            "Pembatasan penyimpanan (GDPR pasal 5(1)(e)): tidak ada lagi tujuan untuk detail yang tidak dimasukkan atau diubah oleh siapa pun selama tiga tahun.",
        ),
        "de": (
            "Drei Jahre nachdem Ihre Angaben zuletzt eingegeben oder geändert wurden (bei der Eröffnung Ihres Kontos, als Sie uns um eine Berichtigung gebeten haben oder als unsere Mitarbeitenden sie aktualisiert haben), vernichten wir den Schlüssel zu Ihren personenbezogenen Angaben und entfernen Ihre Region. Anmelden oder die Nutzung unserer Dienste setzt diese Frist nicht neu in Gang. Was bleibt, ist eine Datensatznummer mit Ihrem Land, Kontostatus und Daten sowie die damit verknüpften Aufzeichnungen (Ihr Einwilligungsverlauf, unsere Aufzeichnung, wer Ihre Daten angesehen hat, Ihre Anfragen), aufbewahrt, wie diese Seite es beschreibt.",
            "Speicherbegrenzung (DSGVO Art. 5 Abs. 1 lit. e): Für Angaben, die drei Jahre lang niemand eingegeben oder geändert hat, bleibt kein Zweck.",
        ),
        "fa": (
            "سه سال پس از آخرین باری که جزئیات شما وارد یا تغییر داده شد (هنگام باز شدن حسابتان، وقتی از ما خواستید آن‌ها را اصلاح کنیم، یا وقتی کارکنان ما آن‌ها را به‌روز کردند)، کلید جزئیات شخصی شما را نابود می‌کنیم و منطقهٔ شما را حذف می‌کنیم. ورود به حساب یا استفاده از خدمات ما این زمان‌سنج را از نو آغاز نمی‌کند. آنچه می‌ماند یک شمارهٔ سابقه با کشور، وضعیت حساب و تاریخ‌های شماست، همراه با سوابق مرتبط با آن (تاریخچهٔ رضایت‌های شما، سابقهٔ ما از این‌که چه کسی داده‌های شما را دید، درخواست‌های شما) که همان‌طور که این صفحه شرح می‌دهد نگه داشته می‌شوند.",
            "محدودیت نگهداری (GDPR ماده ۵(۱)(e)): برای جزئیاتی که سه سال کسی آن‌ها را وارد یا تغییر نداده، هدفی باقی نمی‌ماند.",
        ),
    },
    "customer-notes": {
        "id": (
            "Catatan yang ditulis staf kami pada data Anda dihapus setelah akun Anda berumur dua tahun; catatan yang ditulis setelah itu dihapus pada pembersihan terjadwal kami berikutnya.",
            "Minimalisasi data (GDPR pasal 5(1)(c)): catatan teks bebas hanya berguna selama suatu urusan masih berjalan.",
        ),
        "de": (
            "Notizen, die unsere Mitarbeitenden zu Ihrem Datensatz schreiben, werden gelöscht, sobald Ihr Konto zwei Jahre alt ist; eine später geschriebene Notiz wird bei unserer nächsten planmäßigen Bereinigung gelöscht.",
            "Datenminimierung (DSGVO Art. 5 Abs. 1 lit. c): Freitext-Notizen sind nur nützlich, solange eine Angelegenheit aktuell ist.",
        ),
        "fa": (
            "یادداشت‌هایی که کارکنان ما روی پروندهٔ شما می‌نویسند، وقتی حساب شما دو ساله شود حذف می‌شوند؛ یادداشتی که پس از آن نوشته شود در پاک‌سازی زمان‌بندی‌شدهٔ بعدی ما حذف می‌شود.",
            "کمینه‌سازی داده (GDPR ماده ۵(۱)(c)): یادداشت‌های متنی آزاد فقط تا زمانی سودمندند که موضوعی جاری باشد.",
        ),
    },
    "access-log": {
        "id": (
            "Catatan tentang kapan staf melihat data Anda, dalam peran apa, dan mengapa, disimpan selama satu tahun. Ketika seorang staf meminta melihat suatu detail secara lengkap, permintaan itu (siapa yang meminta, dan alasan yang diberikan) disimpan tanpa batas waktu tertentu dalam catatan audit kami.",
            "Akuntabilitas (GDPR pasal 5(2)); satu tahun memungkinkan Anda melihat siapa yang melihat data Anda dan memungkinkan kami menyelidiki penyalahgunaan.",
        ),
        "de": (
            "Die Aufzeichnung, wann Mitarbeitende Ihre Daten angesehen haben, in welcher Rolle und warum, wird ein Jahr lang aufbewahrt. Wenn Mitarbeitende eine Angabe vollständig sehen wollen, wird diese Anfrage (wer gefragt hat und mit welcher Begründung) ohne festes Ende in unseren Prüfprotokollen aufbewahrt.",
            "Rechenschaftspflicht (DSGVO Art. 5 Abs. 2); ein Jahr lässt Sie sehen, wer Ihre Daten angesehen hat, und lässt uns Missbrauch untersuchen.",
        ),
        "fa": (
            "سابقهٔ این‌که کارکنان چه زمانی، در چه نقشی و چرا داده‌های شما را دیدند، یک سال نگه داشته می‌شود. وقتی یکی از کارکنان بخواهد جزئیاتی را کامل ببیند، آن درخواست (چه کسی خواست و چه دلیلی آورد) بدون پایان مشخص در سوابق حسابرسی ما نگه داشته می‌شود.",
            "پاسخ‌گویی (GDPR ماده ۵(۲))؛ یک سال به شما امکان می‌دهد ببینید چه کسی داده‌هایتان را دیده و به ما امکان می‌دهد سوءاستفاده را بررسی کنیم.",
        ),
    },
    "consent-proof": {
        "id": (
            "Ketika Anda menarik suatu persetujuan, kami menyimpan catatan tentang apa yang Anda setujui dan kapan selama lima tahun sebagai bukti, lalu menghapusnya.",
            "Bukti persetujuan (GDPR pasal 7(1)); masa kedaluwarsa gugatan terkait pemasaran berlaku hingga lima tahun.",
        ),
        "de": (
            "Wenn Sie eine Einwilligung widerrufen, bewahren wir die Aufzeichnung, wozu und wann Sie zugestimmt haben, fünf Jahre lang als Nachweis auf und löschen sie dann.",
            "Nachweis der Einwilligung (DSGVO Art. 7 Abs. 1); Verjährungsfristen für Ansprüche zu Werbung betragen bis zu fünf Jahre.",
        ),
        "fa": (
            "وقتی رضایتی را پس بگیرید، سابقهٔ این‌که با چه چیزی و چه زمانی موافقت کردید را پنج سال به عنوان مدرک نگه می‌داریم و سپس حذف می‌کنیم.",
            "اثبات رضایت (GDPR ماده ۷(۱))؛ مهلت‌های مرور زمان برای ادعاهای مربوط به بازاریابی تا پنج سال است.",
        ),
    },
    "interactions": {
        "id": (
            "Catatan kasus dukungan, pengiriman, dan panggilan tersamar yang dilakukan untuk keduanya dihapus satu tahun setelah ditutup.",
            "Pembatasan penyimpanan; satu tahun setelah kasus dukungan atau pengiriman ditutup mencakup keluhan tentangnya.",
        ),
        "de": (
            "Aufzeichnungen über Supportfälle, Lieferungen und die dafür geführten maskierten Anrufe werden ein Jahr nach ihrem Abschluss gelöscht.",
            "Speicherbegrenzung; ein Jahr nach Abschluss eines Supportfalls oder einer Lieferung deckt Beschwerden darüber ab.",
        ),
        "fa": (
            "سوابق پرونده‌های پشتیبانی، ارسال‌ها و تماس‌های پوشیده‌ای که برای آن‌ها برقرار شده، یک سال پس از بسته شدنشان حذف می‌شوند.",
            "محدودیت نگهداری؛ یک سال پس از بسته شدن یک پروندهٔ پشتیبانی یا ارسال، شکایت‌های مربوط به آن را پوشش می‌دهد.",
        ),
    },
}


def translate_seeded(apps, schema_editor):
    RetentionPolicy = apps.get_model("retention", "RetentionPolicy")
    # The English as seeded (0002, its texts as corrected by 0004).
    seeded = import_module("apps.retention.migrations.0002_seed_policies").POLICIES
    english = {code: (text, basis) for code, *_, basis, text in seeded}
    for code, languages in TEXTS.items():
        description, basis = english[code]
        RetentionPolicy.objects.filter(
            code=code, description=description, legal_basis=basis, translations={}
        ).update(
            translations={
                language: {"description": text, "legal_basis": legal_basis}
                for language, (text, legal_basis) in languages.items()
            }
        )


class Migration(migrations.Migration):
    dependencies = [("retention", "0006_verbose_names")]

    operations = [
        migrations.AddField(
            model_name="retentionpolicy",
            name="translations",
            field=models.JSONField(blank=True, default=dict),
        ),
        # Going back, the field (and the translations in it) is dropped.
        migrations.RunPython(translate_seeded, migrations.RunPython.noop),
    ]
