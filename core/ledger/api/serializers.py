from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core.api.fields import AmountField, BusinessDateField, CurrencyField, DateField, MonthField
from core.fx import RATE_LIMIT, SOURCE_LENGTH
from core.ledger.enums import ManualEntryStatus

RATE_PATTERN = re.compile(r"^\d{1,14}(\.\d{1,10})?$")


class AccountOutput(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    type = serializers.CharField()
    role = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    is_active = serializers.BooleanField()


class LineInput(serializers.Serializer):
    account = serializers.CharField(help_text="Account code, e.g. 1000.")
    currency = CurrencyField()
    debit = AmountField(required=False, default=Decimal(0))
    credit = AmountField(required=False, default=Decimal(0))
    memo = serializers.CharField(required=False, allow_blank=True, max_length=300, default="")


class JournalEntryInput(serializers.Serializer):
    entry_date = BusinessDateField()
    description = serializers.CharField(max_length=500)
    lines = LineInput(many=True, allow_empty=False)


class ReverseInput(serializers.Serializer):
    reason = serializers.CharField(max_length=400)
    entry_date = BusinessDateField(required=False)


class LineOutput(serializers.Serializer):
    account = serializers.CharField(source="account.code")
    account_name = serializers.CharField(source="account.name")
    currency = serializers.CharField()
    debit = serializers.DecimalField(max_digits=19, decimal_places=4)
    credit = serializers.DecimalField(max_digits=19, decimal_places=4)
    functional_debit = serializers.DecimalField(max_digits=19, decimal_places=4)
    functional_credit = serializers.DecimalField(max_digits=19, decimal_places=4)
    memo = serializers.CharField()


class JournalEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    entry_date = DateField()
    description = serializers.CharField()
    # DRF's metaclass takes declared fields off the class, so this does not shadow Field.source.
    source = serializers.CharField()  # type: ignore[assignment]
    functional_currency = serializers.CharField()
    reversal_of = serializers.IntegerField(source="reversal_of_id", allow_null=True)
    created_by = serializers.CharField(source="created_by.username", allow_null=True, default=None)
    created_at = serializers.DateTimeField()
    lines = LineOutput(many=True)


class TrialBalanceRowOutput(serializers.Serializer):
    account = serializers.CharField(source="account.code")
    account_name = serializers.CharField(source="account.name")
    currency = serializers.CharField()
    debit = serializers.DecimalField(max_digits=21, decimal_places=4)
    credit = serializers.DecimalField(max_digits=21, decimal_places=4)
    balance = serializers.DecimalField(max_digits=21, decimal_places=4)
    functional_debit = serializers.DecimalField(max_digits=21, decimal_places=4)
    functional_credit = serializers.DecimalField(max_digits=21, decimal_places=4)


class CurrencyTotalOutput(serializers.Serializer):
    currency = serializers.CharField()
    debit = serializers.DecimalField(max_digits=21, decimal_places=4)
    credit = serializers.DecimalField(max_digits=21, decimal_places=4)


class TrialBalanceOutput(serializers.Serializer):
    as_of = DateField(allow_null=True)
    balanced = serializers.BooleanField()
    rows = TrialBalanceRowOutput(many=True)
    totals = CurrencyTotalOutput(many=True)
    functional_currency = serializers.CharField()
    functional_debit = serializers.DecimalField(max_digits=21, decimal_places=4)
    functional_credit = serializers.DecimalField(max_digits=21, decimal_places=4)


@extend_schema_field(
    {"type": "string", "format": "decimal", "pattern": RATE_PATTERN.pattern, "example": "1.0825"}
)
class RateField(AmountField):
    """A rate as a decimal string: positive, up to 14 digits and 10 decimals (the column)."""

    pattern = RATE_PATTERN
    default_error_messages = {
        "type": 'Send the rate as a decimal string such as "1.0825", not as a number.',
        "format": "Not a plain decimal rate (up to 14 digits, a point and up to 10 decimals).",
        "positive": "Must be greater than zero.",
    }

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(max_value=RATE_LIMIT, **kwargs)

    def to_internal_value(self, data: Any) -> Decimal:
        value = super().to_internal_value(data)
        if value <= 0:
            self.fail("positive")
        return value


class FxRateInput(serializers.Serializer):
    base_currency = CurrencyField()
    quote_currency = CurrencyField()
    rate = RateField(help_text="1 base_currency = rate quote_currency.")
    rate_date = DateField()
    # DRF's metaclass takes declared fields off the class: no shadowing of Field.source.
    source = serializers.CharField(  # type: ignore[assignment]
        required=False, max_length=SOURCE_LENGTH, default="manual"
    )


class FxRateOutput(serializers.Serializer):
    id = serializers.IntegerField()
    base_currency = serializers.CharField()
    quote_currency = serializers.CharField()
    rate = RateField()
    rate_date = DateField()
    source = serializers.CharField()  # type: ignore[assignment]
    created_at = serializers.DateTimeField()


class ManualLineOutput(serializers.Serializer):
    account = serializers.CharField()
    currency = serializers.CharField()
    debit = serializers.DecimalField(max_digits=19, decimal_places=4)
    credit = serializers.DecimalField(max_digits=19, decimal_places=4)
    memo = serializers.CharField()


class ManualEntryOutput(serializers.Serializer):
    id = serializers.IntegerField()
    entry_date = DateField()
    description = serializers.CharField()
    lines = ManualLineOutput(many=True)
    amount_functional = serializers.DecimalField(
        max_digits=19,
        decimal_places=4,
        help_text="The entry's debits in the functional currency: compared with the system "
        "settings' ledger.manual_approval_threshold.",
    )
    functional_currency = serializers.CharField()
    status = serializers.ChoiceField(choices=ManualEntryStatus.choices)
    author = serializers.CharField(source="author.username")
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    rejection_reason = serializers.CharField()
    journal_entry = serializers.IntegerField(source="journal_entry_id", allow_null=True)
    created_at = serializers.DateTimeField()


class RejectInput(serializers.Serializer):
    reason = serializers.CharField(max_length=400)


class CloseItemOutput(serializers.Serializer):
    code = serializers.CharField()
    title = serializers.CharField()
    ok = serializers.BooleanField()
    detail = serializers.CharField()
    link = serializers.CharField()


class MonthCloseOutput(serializers.Serializer):
    id = serializers.IntegerField()
    period = MonthField()
    closed_at = serializers.DateTimeField()
    closed_by = serializers.CharField(source="closed_by.username")
    checklist = CloseItemOutput(many=True, help_text="The checklist as it stood when closed.")
    lock_date = DateField(source="period_lock.lock_date", allow_null=True, default=None)
    reopened_at = serializers.DateTimeField(allow_null=True)
    reopened_by = serializers.CharField(
        source="reopened_by.username", allow_null=True, default=None
    )
    reopen_reason = serializers.CharField()


class MonthStatusOutput(serializers.Serializer):
    period = MonthField()
    closed = serializers.BooleanField()
    close = MonthCloseOutput(allow_null=True)
    items = CloseItemOutput(
        many=True, help_text="As it stood when closed; computed now while the month is open."
    )


class MonthCloseInput(serializers.Serializer):
    period = MonthField(help_text="The month to close, YYYY-MM.")


class MonthReopenInput(serializers.Serializer):
    reason = serializers.CharField(max_length=300)
