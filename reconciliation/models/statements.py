"""Bank accounts, their imported statements and statement lines, and the import log.

Statement lines are the raw material of reconciliation: the matching engine reads amount,
dates, texts, counterparty and end-to-end id, and moves ``status`` on.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.encryption import EncryptedTextField, mask_tail
from core.ledger.models import Account
from core.money import round_money
from reconciliation.enums import (
    ImportResult,
    StatementControl,
    StatementFormatChoice,
    StatementLineStatus,
)
from reconciliation.models.common import AMOUNT


class BankAccount(models.Model):
    name = models.CharField(max_length=200)
    currency = models.CharField(max_length=3)
    # The asset account the bank's movements post to (PROTECT: the ledger keeps its history).
    ledger_account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="bank_accounts"
    )
    bank_name = models.CharField(max_length=200, blank=True, default="")
    bic = models.CharField(max_length=11, blank=True, default="")
    # Encrypted at rest (FIELD_ENCRYPTION_KEY); shown only masked.
    account_number = EncryptedTextField(blank=True, default="")
    iban = EncryptedTextField(blank=True, default="")
    # The last four characters, for display and lists without decrypting.
    account_number_last4 = models.CharField(max_length=4, blank=True, default="")
    iban_last4 = models.CharField(max_length=4, blank=True, default="")
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords(excluded_fields=["account_number", "iban"])

    class Meta:
        ordering = ("name", "pk")
        constraints = [
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="bank_account_currency_iso"
            ),
        ]

    def __str__(self) -> str:
        number = self.iban_masked or self.account_number_masked
        return f"{self.name} {number}".strip()

    @property
    def account_number_masked(self) -> str:
        return mask_tail(self.account_number_last4) if self.account_number_last4 else ""

    @property
    def iban_masked(self) -> str:
        return mask_tail(self.iban_last4) if self.iban_last4 else ""


class CsvMapping(models.Model):
    """A bank account's saved CSV column mapping (``reconciliation.importers.CsvMapping``)."""

    bank_account = models.OneToOneField(
        BankAccount, on_delete=models.CASCADE, related_name="csv_mapping"
    )
    name = models.CharField(max_length=100, default="custom")
    # The mapping's fields as JSON (delimiter, encoding, date format, columns...).
    config = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=timezone.now)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    def __str__(self) -> str:
        return f"{self.name} ({self.bank_account_id})"


class Statement(models.Model):
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="statements"
    )
    format = models.CharField(max_length=10, choices=StatementFormatChoice.choices)
    statement_id = models.CharField(max_length=100, blank=True, default="")
    sequence = models.CharField(max_length=40, blank=True, default="")
    account_identifier = models.CharField(max_length=100, blank=True, default="")
    currency = models.CharField(max_length=3)
    opening_balance = models.DecimalField(**AMOUNT, null=True, blank=True)
    closing_balance = models.DecimalField(**AMOUNT, null=True, blank=True)
    opening_date = models.DateField(null=True, blank=True)
    closing_date = models.DateField(null=True, blank=True)
    control = models.CharField(max_length=20, choices=StatementControl.choices)
    # The file it came from: one import per file hash and position in the file.
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_sha256 = models.CharField(max_length=64)
    file_position = models.PositiveIntegerField(default=1)
    # The same statement again (in another file) is recognised by its content.
    fingerprint = models.CharField(max_length=64)
    line_count = models.PositiveIntegerField(default=0)
    # Lines of the statement that were already known (another file or a feed).
    skipped_line_count = models.PositiveIntegerField(default=0)
    imported_at = models.DateTimeField(default=timezone.now, editable=False)
    imported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    history = HistoricalRecords()

    class Meta:
        ordering = ("-imported_at", "-pk")
        constraints = [
            models.UniqueConstraint(
                fields=("bank_account", "file_sha256", "file_position"),
                name="statement_file_once",
            ),
            models.UniqueConstraint(
                fields=("bank_account", "fingerprint"), name="statement_content_once"
            ),
            # An opening balance is only kept with the closing one it was checked against.
            models.CheckConstraint(
                condition=Q(opening_balance__isnull=True) | Q(closing_balance__isnull=False),
                name="statement_opening_has_closing",
            ),
        ]
        indexes = [
            models.Index(fields=("bank_account", "closing_date"), name="statement_acct_date")
        ]
        permissions = [("import_statement", "Can import bank statements")]

    def __str__(self) -> str:
        return f"{self.get_format_display()} {self.statement_id or self.pk} ({self.currency})"

    @property
    def movement(self) -> Decimal | None:
        if self.opening_balance is None or self.closing_balance is None:
            return None
        return self.closing_balance - self.opening_balance


class StatementLine(models.Model):
    statement = models.ForeignKey(Statement, on_delete=models.PROTECT, related_name="lines")
    # Denormalised from the statement so the dedup constraint can be per bank account.
    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="statement_lines"
    )
    position = models.PositiveIntegerField()
    booking_date = models.DateField()
    value_date = models.DateField(null=True, blank=True)
    # Signed: money into the account positive, out of it negative.
    amount = models.DecimalField(**AMOUNT)
    currency = models.CharField(max_length=3)
    description = models.TextField(blank=True, default="")
    counterparty_name = models.CharField(max_length=200, blank=True, default="")
    counterparty_account = models.CharField(max_length=64, blank=True, default="")
    bank_reference = models.CharField(max_length=64, blank=True, default="")
    end_to_end_id = models.CharField(max_length=64, blank=True, default="")
    transaction_code = models.CharField(max_length=32, blank=True, default="")
    source = models.CharField(max_length=100, blank=True, default="")
    raw = models.TextField(blank=True, default="")
    # sha256 of date, amount, currency and the strongest reference (importers.fingerprint).
    fingerprint = models.CharField(max_length=64)
    status = models.CharField(
        max_length=20, choices=StatementLineStatus.choices, default=StatementLineStatus.UNMATCHED
    )

    class Meta:
        ordering = ("booking_date", "statement_id", "position")
        constraints = [
            models.UniqueConstraint(
                fields=("bank_account", "fingerprint"), name="statement_line_once"
            ),
        ]
        indexes = [
            models.Index(
                fields=("bank_account", "status", "booking_date"), name="line_acct_status"
            ),
            models.Index(fields=("end_to_end_id",), name="line_e2e"),
        ]

    def __str__(self) -> str:
        amount = f"{round_money(self.amount, self.currency):,} {self.currency}"
        return f"{self.booking_date} {amount} {self.description[:40]}"


class ImportLog(models.Model):
    """Every import attempt, refused ones included: who, when, which file, what came of it."""

    bank_account = models.ForeignKey(
        BankAccount, on_delete=models.PROTECT, related_name="import_logs", null=True, blank=True
    )
    file_name = models.CharField(max_length=255, blank=True, default="")
    file_sha256 = models.CharField(max_length=64)
    file_size = models.PositiveIntegerField(default=0)
    format = models.CharField(max_length=10, blank=True, default="")
    result = models.CharField(max_length=20, choices=ImportResult.choices)
    error_code = models.CharField(max_length=40, blank=True, default="")
    message = models.TextField(blank=True, default="")
    statement_count = models.PositiveIntegerField(default=0)
    line_count = models.PositiveIntegerField(default=0)
    skipped_line_count = models.PositiveIntegerField(default=0)
    statements = models.ManyToManyField(Statement, blank=True, related_name="import_logs")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )

    class Meta:
        ordering = ("-created_at", "-pk")

    def __str__(self) -> str:
        return f"{self.file_name or self.file_sha256[:12]} {self.result}"
