"""Serializers of customers as staff may see them, for the API doors that answer with
a customer: access's (list, detail, reveal, close) and retention's erasure."""

from rest_framework import serializers

from apps.customers.models import CustomerStatus


def _pii(help_text: str = "") -> serializers.CharField:
    return serializers.CharField(allow_null=True, required=False, help_text=help_text)


class RestrictionOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    purpose = serializers.CharField(help_text="The only use the data is kept for.")
    since = serializers.DateTimeField()


class CustomerOutputSerializer(serializers.Serializer):
    """A customer as the caller may see them. A PII field is full, masked
    (`j•••@example.com`, `•••• 1234`, ...) or absent (hidden by the access policy);
    `shown` says which. `[erased]` marks a crypto-shredded value."""

    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=CustomerStatus.choices)
    country = serializers.CharField()
    region = serializers.CharField()
    created_at = serializers.DateTimeField()
    last_activity_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    erased = serializers.BooleanField()
    full_name = _pii()
    email = _pii()
    phone = _pii()
    address_line = _pii()
    city = _pii()
    postal_code = _pii()
    date_of_birth = _pii("Full date, or the birth year when masked.")
    national_id = _pii()
    notes = _pii()
    payment_token = _pii()
    card_last4 = _pii()
    shown = serializers.DictField(
        child=serializers.ChoiceField(choices=["full", "masked"]),
        help_text="For each field present: full or masked.",
    )
    reveal_expires_at = serializers.DateTimeField(required=False)
    restricted = RestrictionOutputSerializer(
        many=True,
        required=False,
        help_text="Present while the customer's data is restricted (GDPR art. 18): "
        "fields the policy shows in full are masked, and a reveal's reason must name "
        "a restriction's ground (its purpose's text before any \":\", in any case "
        "and spacing), else 403 on `reason`.",
    )
