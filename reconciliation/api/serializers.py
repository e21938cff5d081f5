"""Input and output shapes of the reconciliation API (plain Serializers)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from rest_framework import serializers

from core.api.fields import CurrencyField, DateField
from core.money import round_money
from reconciliation.enums import StatementFormatChoice
from reconciliation.importers import BANK_MAPPINGS


def amount_out(value: Decimal | None, currency: str) -> str | None:
    """A decimal string in the currency's minor units, more only when the bank sent more."""
    if value is None:
        return None
    rounded = round_money(value, currency)
    return f"{rounded if rounded == value else value.normalize():f}"


class BankAccountInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    currency = CurrencyField()
    account_number = serializers.CharField(
        max_length=34, required=False, allow_blank=True, default=""
    )
    iban = serializers.CharField(max_length=42, required=False, allow_blank=True, default="")
    bic = serializers.CharField(max_length=11, required=False, allow_blank=True, default="")
    bank_name = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")
    ledger_account = serializers.IntegerField(required=False, min_value=1)


class BankAccountOutput(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    currency = serializers.CharField()
    bank_name = serializers.CharField()
    bic = serializers.CharField()
    # Only ever masked (••••1234).
    account_number = serializers.CharField(source="account_number_masked")
    iban = serializers.CharField(source="iban_masked")
    ledger_account = serializers.IntegerField(source="ledger_account_id")
    ledger_account_code = serializers.CharField(source="ledger_account.code")
    is_active = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class StatementImportInput(serializers.Serializer):
    file = serializers.FileField(allow_empty_file=True, use_url=False)
    bank_account = serializers.IntegerField(min_value=1)
    format = serializers.ChoiceField(choices=StatementFormatChoice.choices, required=False)
    # A saved bank mapping for a CSV file (else the bank account's own mapping).
    csv_mapping = serializers.ChoiceField(choices=sorted(BANK_MAPPINGS), required=False)


class StatementLineOutput(serializers.Serializer):
    id = serializers.IntegerField()
    position = serializers.IntegerField()
    booking_date = DateField()
    value_date = DateField(allow_null=True)
    amount = serializers.SerializerMethodField()
    currency = serializers.CharField()
    description = serializers.CharField()
    counterparty_name = serializers.CharField()
    counterparty_account = serializers.CharField()
    bank_reference = serializers.CharField()
    end_to_end_id = serializers.CharField()
    transaction_code = serializers.CharField()
    status = serializers.CharField()

    def get_amount(self, line: Any) -> str | None:
        return amount_out(line.amount, line.currency)


class StatementOutput(serializers.Serializer):
    id = serializers.IntegerField()
    bank_account = serializers.IntegerField(source="bank_account_id")
    format = serializers.CharField()
    statement_id = serializers.CharField()
    sequence = serializers.CharField()
    currency = serializers.CharField()
    transactions = serializers.IntegerField()
    opening_balance = serializers.SerializerMethodField()
    closing_balance = serializers.SerializerMethodField()
    opening_date = DateField(allow_null=True)
    closing_date = DateField(allow_null=True)
    control = serializers.CharField()
    file_name = serializers.CharField()
    file_sha256 = serializers.CharField()
    skipped_transactions = serializers.IntegerField(source="skipped_line_count")
    imported_at = serializers.DateTimeField()

    def get_opening_balance(self, statement: Any) -> str | None:
        return amount_out(statement.opening_balance, statement.currency)

    def get_closing_balance(self, statement: Any) -> str | None:
        return amount_out(statement.closing_balance, statement.currency)


class StatementDetailOutput(StatementOutput):
    lines = StatementLineOutput(many=True)


class StatementImportOutput(serializers.Serializer):
    """The first statement's fields, plus every statement of the file."""

    id = serializers.IntegerField()
    format = serializers.CharField()
    transactions = serializers.IntegerField()
    opening_balance = serializers.CharField(allow_null=True)
    closing_balance = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    created = serializers.BooleanField()
    statements = StatementOutput(many=True)
