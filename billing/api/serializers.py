from __future__ import annotations

from typing import Any

from django.utils import timezone
from rest_framework import serializers

from billing.enums import AllocationOrder, InvoiceStatus, PaymentMethodType
from billing.models import Customer
from billing.selectors import invoice_link_url
from core.api.fields import (
    AmountField,
    BusinessDateField,
    CurrencyField,
    DateField,
    MoneyOutputField,
    UnitPriceOutputField,
)
from core.dates import DateKind
from core.money import round_money
from core.system_settings import system_settings

MEMO_LENGTH = system_settings().limits.memo_length


class CustomerInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField()
    currency = CurrencyField()
    cc_emails = serializers.ListField(child=serializers.EmailField(), required=False)
    address_line1 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    address_line2 = serializers.CharField(max_length=200, required=False, allow_blank=True)
    city = serializers.CharField(max_length=100, required=False, allow_blank=True)
    region = serializers.CharField(max_length=100, required=False, allow_blank=True)
    postal_code = serializers.CharField(max_length=20, required=False, allow_blank=True)
    country = serializers.CharField(max_length=2, min_length=2, required=False, allow_blank=True)
    payment_terms = serializers.IntegerField(
        min_value=0, max_value=365, required=False, allow_null=True
    )
    tax_jurisdiction = serializers.CharField(max_length=20, required=False, allow_blank=True)
    tax_id = serializers.CharField(max_length=40, required=False, allow_blank=True)
    tax_exempt = serializers.BooleanField(required=False)
    reverse_charge = serializers.BooleanField(required=False)
    acquisition_channel = serializers.CharField(max_length=60, required=False, allow_blank=True)
    campaign = serializers.CharField(max_length=100, required=False, allow_blank=True)
    acquired_on = DateField(
        required=False, help_text="Customer since (not after today); today when omitted."
    )
    payment_allocation_order = serializers.ChoiceField(
        choices=AllocationOrder.choices, required=False
    )
    # Changing these needs billing.manage_credit (finance_admin, approver).
    credit_limit = AmountField(
        required=False, allow_null=True, help_text="In the customer's currency; null: no limit"
    )
    credit_hold = serializers.BooleanField(required=False)
    credit_hold_reason = serializers.CharField(max_length=300, required=False, allow_blank=True)
    autopay = serializers.BooleanField(
        required=False, help_text="Charge each issued invoice on the default saved card."
    )
    time_zone = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="IANA time zone (Europe/Paris): autopay retries are made in its working day.",
    )


class CustomerOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    cc_emails = serializers.ListField(child=serializers.EmailField())
    currency = serializers.CharField()
    address_line1 = serializers.CharField()
    address_line2 = serializers.CharField()
    city = serializers.CharField()
    region = serializers.CharField()
    postal_code = serializers.CharField()
    country = serializers.CharField()
    payment_terms = serializers.IntegerField(allow_null=True)
    tax_jurisdiction = serializers.CharField()
    tax_id = serializers.CharField()
    tax_exempt = serializers.BooleanField()
    reverse_charge = serializers.BooleanField()
    acquisition_channel = serializers.CharField()
    campaign = serializers.CharField()
    acquired_on = DateField()
    payment_allocation_order = serializers.CharField()
    credit_balance = MoneyOutputField()
    credit_limit = serializers.SerializerMethodField()
    credit_hold = serializers.BooleanField()
    credit_hold_reason = serializers.CharField()
    autopay = serializers.BooleanField()
    time_zone = serializers.CharField()
    created_at = serializers.DateTimeField()
    erased_at = serializers.DateTimeField(
        allow_null=True, help_text="When its personal data was erased (GDPR); then read-only."
    )

    def get_credit_limit(self, obj: Any) -> str | None:
        if obj.credit_limit is None:
            return None
        return f"{round_money(obj.credit_limit, obj.currency):f}"


class InvoiceLineInput(serializers.Serializer):
    description = serializers.CharField(max_length=500, required=False, default="")
    quantity = AmountField()
    unit_price = AmountField(allow_negative=True, required=False)
    price = serializers.IntegerField(required=False, min_value=1, help_text="Catalog price id")
    tax_rate = serializers.DecimalField(
        max_digits=7, decimal_places=6, min_value=0, max_value=1, required=False, allow_null=True
    )
    tax_inclusive = serializers.BooleanField(required=False, default=False)
    period_start = BusinessDateField(required=False, allow_null=True)
    period_end = BusinessDateField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "price" not in attrs and "unit_price" not in attrs:
            raise serializers.ValidationError("Give a unit_price or a catalog price.")
        if "price" not in attrs and not attrs.get("description"):
            raise serializers.ValidationError({"description": "This field is required."})
        return attrs


class InvoiceInput(serializers.Serializer):
    customer: serializers.PrimaryKeyRelatedField[Customer] = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all()
    )
    currency = CurrencyField(required=False)
    issue_date = BusinessDateField(required=False, allow_null=True)
    due_date = BusinessDateField(required=False, allow_null=True)
    memo = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MEMO_LENGTH
    )
    lines = InvoiceLineInput(many=True, allow_empty=False)
    issue = serializers.BooleanField(required=False, default=False)
    # With ``issue``: let it past the customer's credit limit (billing.override_credit_limit).
    override_credit_limit = serializers.BooleanField(required=False, default=False)


class InvoiceIssueInput(serializers.Serializer):
    # Let the invoice past the customer's credit limit (billing.override_credit_limit).
    override_credit_limit = serializers.BooleanField(required=False, default=False)


class InvoiceUpdateInput(serializers.Serializer):
    currency = CurrencyField(required=False)
    issue_date = BusinessDateField(required=False, allow_null=True)
    due_date = BusinessDateField(required=False, allow_null=True)
    memo = serializers.CharField(
        required=False, allow_blank=True, default="", max_length=MEMO_LENGTH
    )
    lines = InvoiceLineInput(many=True, allow_empty=False)


class ReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class CreditApplyInput(serializers.Serializer):
    amount = AmountField(
        required=False,
        help_text="In the invoice's currency; as much as the credit balance and the amount due "
        "allow when omitted.",
    )
    applied_date = BusinessDateField(kind=DateKind.RECEIVED, required=False)


class InvoiceLineOutput(serializers.Serializer):
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=19, decimal_places=4)
    unit_price = UnitPriceOutputField()
    tax_rate = serializers.DecimalField(max_digits=7, decimal_places=6)
    amount = MoneyOutputField()
    tax = MoneyOutputField(source="tax_amount")
    period_start = DateField(allow_null=True)
    period_end = DateField(allow_null=True)


class InvoiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField(allow_null=True)
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    customer = serializers.IntegerField(source="customer_id")
    currency = serializers.CharField()
    issue_date = DateField(allow_null=True)
    due_date = DateField(allow_null=True)
    subtotal = MoneyOutputField()
    tax = MoneyOutputField()
    total = MoneyOutputField()
    amount_paid = MoneyOutputField()
    amount_credited = MoneyOutputField()
    amount_due = MoneyOutputField()
    memo = serializers.CharField()
    lines = InvoiceLineOutput(many=True)
    issued_at = serializers.DateTimeField(allow_null=True)
    pdf_available = serializers.SerializerMethodField()
    hosted_invoice_url = serializers.SerializerMethodField(
        help_text="The customer's page of the invoice (view, PDF, how to pay); null: none active."
    )

    def get_pdf_available(self, obj: Any) -> bool:
        return bool(obj.pdf_sha256)

    def get_hosted_invoice_url(self, obj: Any) -> str | None:
        links = getattr(obj, "active_links", None)
        if links is None:
            links = list(obj.links.filter(revoked_at__isnull=True, expires_at__gt=timezone.now()))
        return invoice_link_url(links[0]) if links else None


class AllocationInput(serializers.Serializer):
    invoice = serializers.IntegerField()
    amount = AmountField()


class PaymentInput(serializers.Serializer):
    customer: serializers.PrimaryKeyRelatedField[Customer] = serializers.PrimaryKeyRelatedField(
        queryset=Customer.objects.all()
    )
    amount = AmountField()
    currency = CurrencyField()
    method = serializers.ChoiceField(choices=PaymentMethodType.choices)
    received_date = BusinessDateField(kind=DateKind.RECEIVED, required=False)
    reference = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    allocations = AllocationInput(many=True, required=False, allow_empty=True)
    payment_method = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="A saved payment method (processor token) to charge; then exactly one "
        "allocation, for the invoice's amount due.",
    )


class AllocationOutput(serializers.Serializer):
    invoice = serializers.IntegerField(source="invoice_id")
    number = serializers.CharField(source="invoice.number")
    amount = MoneyOutputField()


class PaymentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    customer = serializers.IntegerField(source="customer_id")
    currency = serializers.CharField()
    amount = MoneyOutputField()
    amount_allocated = MoneyOutputField()
    method = serializers.CharField()
    status = serializers.CharField()
    received_date = DateField()
    reference = serializers.CharField()
    allocations = AllocationOutput(many=True)
