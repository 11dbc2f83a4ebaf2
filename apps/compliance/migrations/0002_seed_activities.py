"""The record of processing activities a business starts from (GDPR art. 30): one
activity per seeded consent purpose, and the processing the product does itself.
Each is linked to the seeded systems, recipients and retention policies it uses; a
row an administrator has removed since is skipped. Unseeding removes these activities
only while nobody has reviewed them."""

from django.db import migrations

CONSENT = "consent"
CONTRACT = "contract"
LEGITIMATE = "legitimate_interest"
LEGAL = "legal_obligation"

DB = "Amanah database"
BACKUPS = "Encrypted backups"
EMAIL = "Email provider"
PAYMENTS = "Payment processor"
DELIVERY = "Delivery partner"
PARTNER = "Marketing partner"
CUSTOMER_RECORD = ["closed-accounts", "inactive-customers"]

# code, name, purpose, basis, subjects, categories, consent purpose, systems,
# recipients, retention policies, owner
ACTIVITIES = [
    (
        "marketing-email",
        "Marketing emails",
        "Offers and news by email to customers who confirmed by a link emailed to "
        "them; the sending system asks Amanah who may be contacted.",
        CONSENT,
        "Customers who agreed",
        ["identity", "contact"],
        "marketing_email",
        [DB, BACKUPS],
        [],
        ["consent-proof", *CUSTOMER_RECORD],
        "Head of Marketing",
    ),
    (
        "marketing-sms",
        "Marketing text messages",
        "Offers by SMS to customers who agreed.",
        CONSENT,
        "Customers who agreed",
        ["identity", "contact"],
        "marketing_sms",
        [DB, BACKUPS],
        [],
        ["consent-proof", *CUSTOMER_RECORD],
        "Head of Marketing",
    ),
    (
        "marketing-push",
        "App notifications",
        "Offers and reminders as notifications in the app, to customers who agreed.",
        CONSENT,
        "Customers who agreed",
        ["identity"],
        "marketing_push",
        [DB, BACKUPS],
        [],
        ["consent-proof", *CUSTOMER_RECORD],
        "Head of Marketing",
    ),
    (
        "analytics",
        "Product analytics",
        "Measuring how customers who agreed use the services, to improve them.",
        CONSENT,
        "Customers who agreed",
        ["identity"],
        "analytics",
        [DB, BACKUPS],
        [],
        ["consent-proof", *CUSTOMER_RECORD],
        "Head of Product",
    ),
    (
        "partner-sharing",
        "Sharing with partners",
        "Sharing contact details with selected partners for their own offers, with "
        "the customer's consent (the CCPA's “sale or sharing”).",
        CONSENT,
        "Customers who agreed",
        ["identity", "contact"],
        "partner_sharing",
        [DB, BACKUPS],
        [PARTNER],
        ["consent-proof", *CUSTOMER_RECORD],
        "Head of Marketing",
    ),
    (
        "customer-accounts",
        "Customer accounts",
        "Opening and keeping customers' accounts: their details, sign-in and "
        "payments (a token and the card's last 4 digits).",
        CONTRACT,
        "Customers",
        ["identity", "contact", "address", "financial", "sensitive"],
        None,
        [DB, BACKUPS, EMAIL, PAYMENTS],
        [],
        CUSTOMER_RECORD,
        "Head of Customer Operations",
    ),
    (
        "customer-support",
        "Customer support",
        "Answering customers' questions and complaints; staff see details as far as "
        "the case needs, every look logged.",
        CONTRACT,
        "Customers",
        ["identity", "contact", "address", "free_text"],
        None,
        [DB, BACKUPS],
        [],
        ["interactions", "customer-notes", "access-log", *CUSTOMER_RECORD],
        "Head of Customer Support",
    ),
    (
        "delivery",
        "Deliveries",
        "Delivering orders: the delivery partner gets the name and address, and "
        "calls through a masked number.",
        CONTRACT,
        "Customers",
        ["identity", "address", "contact"],
        None,
        [DB, BACKUPS],
        [DELIVERY],
        ["interactions", *CUSTOMER_RECORD],
        "Head of Logistics",
    ),
    (
        "security-monitoring",
        "Security monitoring",
        "The access log (who looked at which customer's data, when and why) and the "
        "rules that raise alerts on suspicious access.",
        LEGITIMATE,
        "Customers and staff",
        ["identity"],
        None,
        [DB, BACKUPS],
        [],
        ["access-log"],
        "Head of Security",
    ),
    (
        "breach-handling",
        "Breach handling",
        "Recording personal data breaches, the people affected, and notifying the "
        "authorities and the people as the law requires.",
        LEGAL,
        "Customers affected by a breach",
        ["identity", "contact"],
        None,
        [DB, BACKUPS, EMAIL],
        [],
        [],
        "Data Protection Officer",
    ),
    (
        "customer-requests",
        "Customers' requests",
        "Answering customers' requests about their data (access, export, "
        "correction, erasure, restriction, objection) within the law's time.",
        LEGAL,
        "Customers",
        ["identity", "contact"],
        None,
        [DB, BACKUPS, EMAIL],
        [],
        [],
        "Data Protection Officer",
    ),
    (
        "backups",
        "Backups",
        "Nightly encrypted backups of the database, to restore the service after a "
        "failure.",
        LEGITIMATE,
        "Customers and staff",
        ["identity", "contact", "address", "financial", "sensitive", "free_text"],
        None,
        [BACKUPS],
        [],
        [],
        "Head of Engineering",
    ),
]


def seed(apps, schema_editor):
    Activity = apps.get_model("compliance", "ProcessingActivity")
    Purpose = apps.get_model("consent", "Purpose")
    System = apps.get_model("inventory", "System")
    Recipient = apps.get_model("inventory", "Recipient")
    Policy = apps.get_model("retention", "RetentionPolicy")
    for (
        code,
        name,
        purpose,
        basis,
        subjects,
        categories,
        consent_code,
        systems,
        recipients,
        policies,
        owner,
    ) in ACTIVITIES:
        consent_purpose = None
        if consent_code:
            consent_purpose = Purpose.objects.filter(code=consent_code).first()
            if consent_purpose is None:
                continue  # the purpose was removed: nothing to record
        activity, made = Activity.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "purpose": purpose,
                "legal_basis": basis,
                "data_subjects": subjects,
                "data_categories": categories,
                "consent_purpose": consent_purpose,
                "owner": owner,
            },
        )
        if not made:
            continue
        activity.systems.set(System.objects.filter(name__in=systems))
        activity.recipients.set(Recipient.objects.filter(name__in=recipients))
        activity.retention_policies.set(Policy.objects.filter(code__in=policies))


def unseed(apps, schema_editor):
    apps.get_model("compliance", "ProcessingActivity").objects.filter(
        code__in=[a[0] for a in ACTIVITIES], reviewed_at__isnull=True
    ).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("compliance", "0001_processing_activity"),
        ("consent", "0003_seed_purposes"),
        ("inventory", "0002_seed_inventory"),
        ("retention", "0002_seed_policies"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
