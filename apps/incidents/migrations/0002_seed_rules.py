"""Breach-notification deadlines as data, each with its legal source and the day it was
last checked; public holidays for the business-day rules; status page components."""

from datetime import date

from django.db import migrations

VERIFIED = date(2026, 11, 24)

# code, regime, jurisdiction, audience, duration, unit, clock, min_affected,
# high_risk_only, encryption_exempt, source, notes
RULES = [
    ("eu-gdpr-authority", "EU GDPR", "EU", "authority", 72, "hours", "aware", 1, False,
     False, "GDPR art. 33(1)", "Unless unlikely to result in a risk to people."),
    ("eu-gdpr-individuals", "EU GDPR", "EU", "individuals", None, "hours", "aware", 1,
     True, True, "GDPR art. 34(1), (3)(a)", "Without undue delay when the risk is high."),
    ("uk-gdpr-authority", "UK GDPR", "GB", "authority", 72, "hours", "aware", 1, False,
     False, "UK GDPR art. 33(1)", ""),
    ("uk-gdpr-individuals", "UK GDPR", "GB", "individuals", None, "hours", "aware", 1,
     True, True, "UK GDPR art. 34", "Without undue delay when the risk is high."),
    ("id-uupdp-individuals", "Indonesia UU PDP", "ID", "individuals", 72, "hours",
     "aware", 1, False, False, "UU No. 27/2022 (PDP) art. 46(1)",
     "In writing, within 3 x 24 hours."),
    ("id-uupdp-authority", "Indonesia UU PDP", "ID", "authority", 72, "hours", "aware", 1,
     False, False, "UU No. 27/2022 (PDP) art. 46(1)", "In writing, within 3 x 24 hours."),
    ("sg-pdpa-authority", "Singapore PDPA", "SG", "authority", 3, "calendar_days",
     "assessed", 500, False, False, "PDPA s. 26D(1); PDP (Notification of Data Breaches) "
     "Regulations 2021 reg. 4", "Significant scale: 500 people or more."),
    ("sg-pdpa-individuals", "Singapore PDPA", "SG", "individuals", None, "hours",
     "assessed", 1, True, False, "PDPA s. 26D(2)", "On or after notifying the Commission."),
    ("br-lgpd-authority", "Brazil LGPD", "BR", "authority", 3, "business_days", "aware", 1,
     False, False, "LGPD art. 48; ANPD Resolution CD/ANPD 15/2024 art. 6", ""),
    ("br-lgpd-individuals", "Brazil LGPD", "BR", "individuals", 3, "business_days",
     "aware", 1, False, False, "LGPD art. 48; ANPD Resolution CD/ANPD 15/2024 art. 9", ""),
    ("au-ndb-authority", "Australia NDB", "AU", "authority", None, "hours", "assessed", 1,
     True, False, "Privacy Act 1988 s. 26WK, 26WL",
     "As soon as practicable; the assessment itself within 30 days (s. 26WH)."),
    ("au-ndb-individuals", "Australia NDB", "AU", "individuals", None, "hours", "assessed",
     1, True, False, "Privacy Act 1988 s. 26WL(3)", "As soon as practicable."),
    ("us-ca-individuals", "California", "US-CA", "individuals", 30, "calendar_days",
     "aware", 1, False, True, "Cal. Civ. Code 1798.82(a) (as amended by SB 446, 2025)", ""),
    ("us-ca-attorney-general", "California", "US-CA", "attorney_general", 30,
     "calendar_days", "aware", 501, False, True, "Cal. Civ. Code 1798.82(f)",
     "More than 500 California residents."),
    ("us-ny-individuals", "New York", "US-NY", "individuals", 30, "calendar_days", "aware",
     1, False, True, "N.Y. Gen. Bus. Law 899-aa(2) (as amended 2024)", ""),
    ("us-tx-individuals", "Texas", "US-TX", "individuals", 60, "calendar_days", "aware", 1,
     False, True, "Tex. Bus. & Com. Code 521.053(b)", ""),
    ("us-tx-attorney-general", "Texas", "US-TX", "attorney_general", 30, "calendar_days",
     "aware", 250, False, True, "Tex. Bus. & Com. Code 521.053(i)", "250 residents or more."),
    ("us-fl-individuals", "Florida", "US-FL", "individuals", 30, "calendar_days", "aware",
     1, False, True, "Fla. Stat. 501.171(4)(a)", ""),
    ("us-fl-attorney-general", "Florida", "US-FL", "attorney_general", 30,
     "calendar_days", "aware", 500, False, True, "Fla. Stat. 501.171(3)",
     "500 residents or more."),
    ("us-wa-individuals", "Washington", "US-WA", "individuals", 30, "calendar_days",
     "aware", 1, False, True, "RCW 19.255.010(8)", ""),
    ("us-wa-attorney-general", "Washington", "US-WA", "attorney_general", 30,
     "calendar_days", "aware", 501, False, True, "RCW 19.255.010(7)",
     "More than 500 Washington residents."),
]

HOLIDAYS = [
    ("BR", "2026-01-01", "Confraternização Universal"),
    ("BR", "2026-04-03", "Sexta-feira Santa"),
    ("BR", "2026-04-21", "Tiradentes"),
    ("BR", "2026-05-01", "Dia do Trabalho"),
    ("BR", "2026-09-07", "Independência"),
    ("BR", "2026-10-12", "Nossa Senhora Aparecida"),
    ("BR", "2026-11-02", "Finados"),
    ("BR", "2026-11-15", "Proclamação da República"),
    ("BR", "2026-11-20", "Consciência Negra"),
    ("BR", "2026-12-25", "Natal"),
    ("BR", "2027-01-01", "Confraternização Universal"),
    ("ID", "2026-01-01", "Tahun Baru Masehi"),
    ("ID", "2026-05-01", "Hari Buruh"),
    ("ID", "2026-06-01", "Hari Lahir Pancasila"),
    ("ID", "2026-08-17", "Hari Kemerdekaan"),
    ("ID", "2026-12-25", "Hari Raya Natal"),
    ("ID", "2027-01-01", "Tahun Baru Masehi"),
]

COMPONENTS = ["Website and app", "Customer privacy pages", "Payments", "Deliveries"]


def seed(apps, schema_editor):
    DeadlineRule = apps.get_model("incidents", "DeadlineRule")
    PublicHoliday = apps.get_model("incidents", "PublicHoliday")
    StatusComponent = apps.get_model("incidents", "StatusComponent")
    for (code, regime, where, audience, duration, unit, clock, minimum, high, exempt,
         source, notes) in RULES:
        DeadlineRule.objects.get_or_create(
            code=code,
            defaults={
                "regime": regime,
                "jurisdiction": where,
                "audience": audience,
                "duration": duration,
                "unit": unit,
                "clock_start": clock,
                "min_affected": minimum,
                "high_risk_only": high,
                "encryption_exempt": exempt,
                "legal_source": source,
                "verified_on": VERIFIED,
                "notes": notes,
            },
        )
    for country, day, name in HOLIDAYS:
        PublicHoliday.objects.get_or_create(
            country=country, date=date.fromisoformat(day), defaults={"name": name}
        )
    for position, name in enumerate(COMPONENTS):
        StatusComponent.objects.get_or_create(name=name, defaults={"position": position})


def unseed(apps, schema_editor):
    apps.get_model("incidents", "DeadlineRule").objects.filter(
        code__in=[r[0] for r in RULES]
    ).delete()
    apps.get_model("incidents", "PublicHoliday").objects.all().delete()
    apps.get_model("incidents", "StatusComponent").objects.filter(name__in=COMPONENTS).delete()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
