from __future__ import annotations

from decimal import Decimal

from rest_framework import serializers

from core.api.fields import AmountField, CurrencyField


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
    entry_date = serializers.DateField()
    description = serializers.CharField(max_length=500)
    lines = LineInput(many=True, allow_empty=False)


class ReverseInput(serializers.Serializer):
    reason = serializers.CharField(max_length=400)
    entry_date = serializers.DateField(required=False)


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
    entry_date = serializers.DateField()
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
    as_of = serializers.DateField(allow_null=True)
    balanced = serializers.BooleanField()
    rows = TrialBalanceRowOutput(many=True)
    totals = CurrencyTotalOutput(many=True)
    functional_currency = serializers.CharField()
    functional_debit = serializers.DecimalField(max_digits=21, decimal_places=4)
    functional_credit = serializers.DecimalField(max_digits=21, decimal_places=4)
