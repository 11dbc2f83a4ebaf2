import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.accounts.models import Role
from apps.accounts.services import user_ensure_staff
from apps.consent.models import ConsentSource
from apps.consent.services import consent_record
from apps.core.errors import DomainError
from apps.core.links import public_url
from apps.customers.models import Customer
from apps.customers.selectors import customer_count, customer_find_by_email
from apps.customers.services import customer_create, customers_bulk_create
from apps.demo.access import demo_interactions_ensure
from apps.demo.customers import DemoCustomers
from apps.demo.incidents import demo_incidents_ensure
from apps.demo.inventory import demo_shares_ensure
from apps.demo.retention import demo_holds_ensure
from apps.portal.services import customer_account_enable

DEMO_STAFF = (
    ("support", Role.SUPPORT_AGENT, "+622150910001"),
    ("delivery", Role.DELIVERY_AGENT, "+622150910002"),
    ("compliance", Role.COMPLIANCE_OFFICER, ""),
    ("privacy_admin", Role.PRIVACY_ADMIN, ""),
)
DEV_PASSWORD = "amanah-demo-2026"  # noqa: S105 - documented demo password  # nosec B105
BATCH = 2000
DEMO_CUSTOMER_EMAIL = "siti.rahma@example.com"


class Command(BaseCommand):
    help = (
        "Create demo users (idempotent) and synthetic customers; print how to sign in."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--password",
            help=f"Password for every demo user (development default: {DEV_PASSWORD}).",
        )
        parser.add_argument(
            "--customers",
            type=int,
            default=0,
            help="Add this many synthetic customers.",
        )
        parser.add_argument(
            "--min-customers",
            type=int,
            default=0,
            help="Add synthetic customers until at least this many exist.",
        )
        parser.add_argument("--seed", type=int, help="Random seed for repeatable data.")

    def handle(self, *args, password: str | None, **options):
        if password is None:
            if not settings.DEBUG:
                raise CommandError("--password is required when DJANGO_DEBUG=0.")
            password = DEV_PASSWORD
        if len(password) < 12:
            raise CommandError("--password must be at least 12 characters.")
        if options["customers"] < 0 or options["min_customers"] < 0:
            raise CommandError("--customers and --min-customers cannot be negative.")
        staff = {
            username: user_ensure_staff(
                actor=None,
                username=username,
                role=role,
                password=password,
                work_phone=phone,
            )
            for username, role, phone in DEMO_STAFF
        }

        wanted = max(options["customers"], options["min_customers"] - customer_count())
        if wanted > 0:
            self._add_customers(
                wanted, seed=options["seed"], quiet=options["verbosity"] == 0
            )
        demo_customer = self._demo_customer(password)
        if demo_incidents_ensure(actor=staff["privacy_admin"]):
            self.stdout.write("Recorded two demo incidents (/compliance/incidents/).")
        held = demo_holds_ensure(actor=staff["privacy_admin"])
        if held:
            self.stdout.write(f"Placed {held} demo legal holds on overdue customers.")
        opened = demo_interactions_ensure(
            dispatcher=staff["privacy_admin"],
            agents=[staff["support"], staff["delivery"]],
        )
        if opened:
            self.stdout.write(f"Opened {opened} demo support cases and deliveries.")
        shared = demo_shares_ensure(
            actor=staff["privacy_admin"],
            demo_customer=demo_customer,
            courier=staff["delivery"],
        )
        if shared:
            self.stdout.write(
                f"Recorded {shared} demo shares with the inventory's recipients "
                "(/compliance/inventory/)."
            )

        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"Customers on record: {customer_count()}.")
        self.stdout.write(f"Staff sign in at {public_url('accounts:login')} with:")
        for username, role, _ in DEMO_STAFF:
            self.stdout.write(f"  {username:<14} {role.label:<20} password: {password}")
        self.stdout.write(
            "At the first sign-in staff set up two-step sign-in: scan the QR code with "
            "an authenticator app, or in development print the code with "
            "`manage.py totp_code <username>`."
        )
        self.stdout.write(
            "The privacy admin also reaches the Django admin at /admin/ "
            "(customers shown masked)."
        )
        self.stdout.write(
            f"Customers sign in at {public_url('portal:login')} with:\n"
            f"  {DEMO_CUSTOMER_EMAIL}   password: {password}"
        )

    def _demo_customer(self, password: str) -> Customer:
        """A customer who can sign in, with a few choices already made."""
        customer = customer_find_by_email(email=DEMO_CUSTOMER_EMAIL)
        if customer is None:
            customer = customer_create(
                actor=None,
                data={
                    "country": "ID",
                    "region": "ID-JK",
                    "full_name": "Siti Rahma",
                    "email": DEMO_CUSTOMER_EMAIL,
                    "phone": "+62 812-7000-1234",
                    "address_line": "Jl. Kebon Sirih 12",
                    "city": "Jakarta",
                    "postal_code": "10340",
                },
            )
            for code in ("marketing_sms", "analytics", "partner_sharing"):
                consent_record(
                    actor=None,
                    customer=customer,
                    purpose_code=code,
                    granted=True,
                    source=ConsentSource.SELF_SERVICE,
                )
        if customer.user is None or not customer.user.check_password(password):
            customer_account_enable(actor=None, customer=customer, password=password)
        return customer

    def _add_customers(self, count: int, *, seed: int | None, quiet: bool) -> None:
        started = time.monotonic()
        rows = DemoCustomers(seed=seed).rows(count)
        with tqdm(
            total=count, unit="customer", desc="Synthetic customers", disable=quiet
        ) as bar:
            try:
                created = customers_bulk_create(
                    rows=rows, batch_size=BATCH, on_batch=bar.update
                )
            except DomainError as exc:
                raise CommandError(f"Demo data refused: {exc}") from exc
        self.stdout.write(
            f"Added {created} synthetic customers "
            f"in {time.monotonic() - started:.1f} s."
        )
