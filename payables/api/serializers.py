"""Plain input and output serializers of the payables API. Money goes out as decimal
strings in the currency's minor units; bank account numbers and tax ids only masked."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from core.api.fields import (
    AmountField,
    BusinessDateField,
    CurrencyField,
    DateField,
    MoneyOutputField,
    QuantityField,
    UnitPriceOutputField,
)
from core.dates import DateKind
from core.system_settings import system_settings
from payables.enums import PaymentFileFormat, TaxIdType
from payables.models import Approval

# Lines per order, receipt or bill (system setting limits.document_lines).
DOCUMENT_LINES = system_settings().limits.document_lines


class ApprovalOutput(serializers.Serializer):
    decision = serializers.CharField()
    role = serializers.CharField()
    user = serializers.CharField(source="user.username")
    on_behalf_of = serializers.CharField(source="on_behalf_of.username", allow_null=True)
    comment = serializers.CharField()
    decided_at = serializers.DateTimeField()
    version_hash = serializers.CharField()
    voided_at = serializers.DateTimeField(allow_null=True)


def approvals_out(approvals: list[Approval]) -> list[dict[str, Any]]:
    return [dict(ApprovalOutput(a).data) for a in approvals]


# --- Vendors -----------------------------------------------------------------------------------


class BankDetailsInput(serializers.Serializer):
    account_holder = serializers.CharField(max_length=200, required=False, default="")
    routing_number = serializers.CharField(max_length=9, required=False, default="")
    account_number = serializers.CharField(max_length=34, required=False, default="")
    account_type = serializers.ChoiceField(
        choices=["checking", "savings"], required=False, default="checking"
    )
    iban = serializers.CharField(max_length=42, required=False, default="")
    bic = serializers.CharField(max_length=11, required=False, default="")


class VendorInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField()
    currency = CurrencyField()
    country = serializers.CharField(max_length=2, required=False, default="")
    address = serializers.CharField(max_length=1000, required=False, default="")
    tax_id_type = serializers.ChoiceField(
        choices=TaxIdType.choices, required=False, default=TaxIdType.NONE
    )
    tax_id = serializers.CharField(max_length=40, required=False, default="")
    payment_terms_days = serializers.IntegerField(min_value=0, max_value=365, required=False)
    discount_percent = AmountField(required=False)
    discount_days = serializers.IntegerField(min_value=0, max_value=365, required=False, default=0)
    bank = BankDetailsInput(required=False)


class VendorOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    email = serializers.EmailField()
    kind = serializers.CharField()
    currency = serializers.CharField()
    country = serializers.CharField()
    status = serializers.CharField()
    tax_id_type = serializers.CharField()
    tax_id = serializers.CharField(source="tax_id_masked")
    payment_terms_days = serializers.IntegerField()
    discount_percent = serializers.DecimalField(max_digits=5, decimal_places=2)
    discount_days = serializers.IntegerField()
    bank_account_holder = serializers.CharField()
    bank_routing_number = serializers.CharField()
    bank_account_number = serializers.CharField(source="bank_account_masked")
    iban = serializers.CharField(source="iban_masked")
    bic = serializers.CharField()
    on_hold = serializers.BooleanField()
    created_at = serializers.DateTimeField()
    activated_at = serializers.DateTimeField(allow_null=True)
    blocked_reason = serializers.CharField()
    erased_at = serializers.DateTimeField(
        allow_null=True, help_text="When its personal data was erased (GDPR); then read-only."
    )


class BankChangeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    vendor = serializers.IntegerField(source="vendor_id")
    status = serializers.CharField()
    bank_account_holder = serializers.CharField()
    bank_routing_number = serializers.CharField()
    bank_account_number = serializers.CharField(source="bank_account_masked")
    iban = serializers.CharField(source="iban_masked")
    bic = serializers.CharField()
    reason = serializers.CharField()
    requested_at = serializers.DateTimeField()
    requested_by = serializers.CharField(source="requested_by.username", allow_null=True)
    decided_at = serializers.DateTimeField(allow_null=True)
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True)
    comment = serializers.CharField()


class DocumentOutput(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    original_name = serializers.CharField()
    content_type = serializers.CharField()
    size = serializers.IntegerField()
    sha256 = serializers.CharField()
    uploaded_at = serializers.DateTimeField()


# --- Orders and receipts -----------------------------------------------------------------------


class OrderLineInput(serializers.Serializer):
    description = serializers.CharField(max_length=300)
    quantity = QuantityField()
    unit_price = AmountField()
    is_inventory = serializers.BooleanField(required=False, default=False)


class OrderInput(serializers.Serializer):
    vendor = serializers.IntegerField(min_value=1)
    currency = CurrencyField()
    # many=True hands max_length to the ListSerializer (DRF >= 3.15); the stubs miss it.
    lines = OrderLineInput(many=True, allow_empty=False, max_length=DOCUMENT_LINES)  # type: ignore[call-arg]
    department = serializers.CharField(max_length=100, required=False, default="")
    description = serializers.CharField(max_length=500, required=False, default="")


class OrderLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)
    unit_price = UnitPriceOutputField()
    amount = MoneyOutputField()
    quantity_received = serializers.DecimalField(max_digits=14, decimal_places=4)
    is_inventory = serializers.BooleanField()


class OrderOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    vendor = serializers.IntegerField(source="vendor_id")
    currency = serializers.CharField()
    department = serializers.CharField()
    description = serializers.CharField()
    requester = serializers.CharField(source="requester.username")
    status = serializers.CharField()
    total = MoneyOutputField()
    total_functional = serializers.DecimalField(max_digits=19, decimal_places=4)
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    ordered_at = serializers.DateTimeField(allow_null=True)
    lines = OrderLineOutput(many=True)


class DecisionInput(serializers.Serializer):
    comment = serializers.CharField(max_length=1000, required=False, allow_blank=True, default="")


class BillRejectInput(serializers.Serializer):
    """A rejection says why: the comment is required (the requester reads it)."""

    comment = serializers.CharField(max_length=1000)


class PayablesReasonInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)


class ReceiptLineInputSerializer(serializers.Serializer):
    order_line = serializers.IntegerField(min_value=1)
    quantity = QuantityField()


class ReceiptInput(serializers.Serializer):
    purchase_order = serializers.IntegerField(min_value=1)
    received_on = BusinessDateField(
        kind=DateKind.RECEIVED, required=False, input_formats=["%Y-%m-%d"]
    )
    note = serializers.CharField(max_length=500, required=False, default="")
    # many=True hands max_length to the ListSerializer (DRF >= 3.15); the stubs miss it.
    lines = ReceiptLineInputSerializer(many=True, allow_empty=False, max_length=DOCUMENT_LINES)  # type: ignore[call-arg]


class ReceiptLineOutput(serializers.Serializer):
    order_line = serializers.IntegerField(source="order_line_id")
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)


class ReceiptOutput(serializers.Serializer):
    id = serializers.IntegerField()
    purchase_order = serializers.IntegerField(source="order_id")
    received_on = DateField()
    note = serializers.CharField()
    created_at = serializers.DateTimeField()
    lines = ReceiptLineOutput(many=True)


# --- Bills -------------------------------------------------------------------------------------


class BillLineInputSerializer(serializers.Serializer):
    description = serializers.CharField(max_length=300)
    quantity = QuantityField()
    unit_price = AmountField()
    order_line = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    account = serializers.IntegerField(min_value=1, required=False, allow_null=True)


class BillInput(serializers.Serializer):
    vendor = serializers.IntegerField(min_value=1)
    number = serializers.CharField(max_length=60)
    currency = CurrencyField()
    bill_date = BusinessDateField(input_formats=["%Y-%m-%d"])
    due_date = BusinessDateField(required=False, input_formats=["%Y-%m-%d"])
    purchase_order = serializers.IntegerField(min_value=1, required=False, allow_null=True)
    description = serializers.CharField(max_length=500, required=False, default="")
    duplicate_override_reason = serializers.CharField(max_length=300, required=False, default="")
    # many=True hands max_length to the ListSerializer (DRF >= 3.15); the stubs miss it.
    lines = BillLineInputSerializer(many=True, allow_empty=False, max_length=DOCUMENT_LINES)  # type: ignore[call-arg]


class BillLineOutput(serializers.Serializer):
    position = serializers.IntegerField()
    description = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=14, decimal_places=4)
    unit_price = UnitPriceOutputField()
    amount = MoneyOutputField()
    order_line = serializers.IntegerField(source="order_line_id", allow_null=True)
    account = serializers.IntegerField(source="account_id", allow_null=True)


class BillOutput(serializers.Serializer):
    id = serializers.IntegerField()
    vendor = serializers.IntegerField(source="vendor_id")
    number = serializers.CharField()
    currency = serializers.CharField()
    purchase_order = serializers.IntegerField(source="purchase_order_id", allow_null=True)
    bill_date = DateField()
    due_date = DateField()
    discount_date = DateField(allow_null=True)
    discount_amount = MoneyOutputField()
    status = serializers.CharField()
    total = MoneyOutputField()
    amount_paid = MoneyOutputField()
    match_status = serializers.CharField()
    match_result = serializers.JSONField()
    journal_entry = serializers.IntegerField(source="journal_entry_id", allow_null=True)
    created_at = serializers.DateTimeField()
    lines = BillLineOutput(many=True)


class BillApproveInput(DecisionInput):
    accept_match_exception = serializers.BooleanField(required=False, default=False)


# --- Expense reports ---------------------------------------------------------------------------


class ExpenseLineInputSerializer(serializers.Serializer):
    spent_on = BusinessDateField(kind=DateKind.RECEIVED, input_formats=["%Y-%m-%d"])
    category = serializers.IntegerField(min_value=1)
    description = serializers.CharField(max_length=300)
    amount = AmountField()
    justification = serializers.CharField(max_length=500, required=False, default="")


class ExpenseReportInput(serializers.Serializer):
    title = serializers.CharField(max_length=200)
    currency = CurrencyField()
    # many=True hands max_length to the ListSerializer (DRF >= 3.15); the stubs miss it.
    lines = ExpenseLineInputSerializer(many=True, allow_empty=False, max_length=200)  # type: ignore[call-arg]


class ExpenseLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    spent_on = DateField()
    category = serializers.CharField(source="category.name")
    description = serializers.CharField()
    amount = MoneyOutputField()
    justification = serializers.CharField()
    over_limit = serializers.BooleanField()
    receipt = serializers.SerializerMethodField()

    def get_receipt(self, obj: Any) -> str:
        return obj.receipt_name if obj.receipt else ""


class ExpenseReportOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    employee = serializers.CharField(source="employee.username")
    title = serializers.CharField()
    currency = serializers.CharField()
    status = serializers.CharField()
    total = MoneyOutputField()
    amount_paid = MoneyOutputField()
    created_at = serializers.DateTimeField()
    submitted_at = serializers.DateTimeField(allow_null=True)
    approved_at = serializers.DateTimeField(allow_null=True)
    lines = ExpenseLineOutput(many=True)


# --- Payment runs ------------------------------------------------------------------------------


class PaymentRunInput(serializers.Serializer):
    currency = CurrencyField()
    pay_by = BusinessDateField(input_formats=["%Y-%m-%d"])
    payment_date = BusinessDateField(required=False, input_formats=["%Y-%m-%d"])
    file_format = serializers.ChoiceField(choices=PaymentFileFormat.choices, required=False)
    bills = serializers.ListField(
        child=serializers.IntegerField(min_value=1), required=False, max_length=100_000
    )
    amounts = serializers.DictField(child=AmountField(), required=False)
    include_expenses = serializers.BooleanField(required=False, default=True)


class PaymentRunItemOutput(serializers.Serializer):
    vendor = serializers.IntegerField(source="vendor_id")
    bill = serializers.IntegerField(source="bill_id", allow_null=True)
    expense_report = serializers.IntegerField(source="expense_report_id", allow_null=True)
    amount = MoneyOutputField()
    discount = MoneyOutputField()
    end_to_end_id = serializers.CharField()


class PaymentRunOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    currency = serializers.CharField()
    pay_by = DateField()
    payment_date = DateField()
    file_format = serializers.CharField()
    status = serializers.CharField()
    total = MoneyOutputField()
    discount_total = MoneyOutputField()
    item_count = serializers.IntegerField()
    exclusions = serializers.JSONField()
    file_sha256 = serializers.CharField()
    created_at = serializers.DateTimeField()
    approved_at = serializers.DateTimeField(allow_null=True)
    exported_at = serializers.DateTimeField(allow_null=True)
    paid_at = serializers.DateTimeField(allow_null=True)
